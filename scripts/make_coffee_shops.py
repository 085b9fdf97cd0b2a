"""Generate linjax/datasets/coffee_shops.csv (run once; the file is committed).

A synthetic city of 400 coffee shops, seed 2026, built to illustrate the
models of the teaching notebooks and `linjax demo`:

- revenue ($k / month): linear in foot traffic, income, competitors, seats (OLS);
- complaints (count over `months_open`): Poisson with exposure;
- survived (open after three years): logistic in margin and competition;
- wait_minutes (positive, skewed): Gamma with a log link.

    python scripts/make_coffee_shops.py
"""

import csv
import pathlib

import numpy as np

SEED = 2026
N = 400
REGIONS = ["downtown", "suburb", "campus", "airport"]


def generate(seed=SEED, n=N):
    rng = np.random.default_rng(seed)
    region = rng.choice(len(REGIONS), size=n, p=[0.35, 0.35, 0.2, 0.1])
    foot_traffic = np.round(rng.lognormal(np.log(600) + 0.4 * (region == 0) + 0.6 * (region == 3),
                                          0.45, size=n))
    income = np.round(rng.normal(65, 15, size=n).clip(25, 140), 1)
    competitors = rng.poisson(1.0 + 2.5 * (region == 0) + 1.0 * (region == 2))
    seats = rng.integers(8, 80, size=n)
    square_footage = np.round(seats * rng.normal(22, 3, size=n) + rng.normal(300, 60, size=n))
    rent = np.round(rng.normal(3.0, 0.5, size=n) + 1.5 * (region == 0) + 2.0 * (region == 3), 2)
    revenue = (5.0 + 0.030 * foot_traffic + 0.12 * income - 1.8 * competitors + 0.15 * seats
               + rng.normal(0, 4.0, size=n))
    revenue = np.round(revenue.clip(1.0, None), 2)
    months_open = rng.integers(6, 61, size=n)
    complaint_rate = np.exp(-2.2 + 0.0008 * foot_traffic - 0.01 * seats + 0.3 * (region == 3))
    complaints = rng.poisson(complaint_rate * months_open)
    margin = revenue - rent * square_footage / 1000
    survival_eta = -3.2 + 0.12 * margin - 0.35 * competitors
    survived = (rng.random(n) < 1 / (1 + np.exp(-survival_eta))).astype(int)
    wait_mu = np.exp(1.0 + 0.0006 * foot_traffic - 0.008 * seats)
    wait_minutes = np.round(rng.gamma(4.0, wait_mu / 4.0), 2)
    return {
        "shop_id": np.arange(1, n + 1), "region": np.array(REGIONS)[region],
        "foot_traffic": foot_traffic.astype(int), "income": income, "competitors": competitors,
        "rent": rent, "seats": seats, "square_footage": square_footage.astype(int),
        "months_open": months_open, "revenue": revenue, "complaints": complaints,
        "survived": survived, "wait_minutes": wait_minutes,
    }


if __name__ == "__main__":
    data = generate()
    path = pathlib.Path(__file__).resolve().parents[1] / "linjax" / "datasets" / "coffee_shops.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(data))
        for row in zip(*data.values(), strict=True):
            writer.writerow(row)
    print(f"wrote {path}")
