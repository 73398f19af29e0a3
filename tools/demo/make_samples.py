#!/usr/bin/env python3
"""Writes the demo's SAMPLE DATA: the expert panel's score sheets and the users' votes of the
sample competition's two rounds. Round 1 has five teams; round 2 the three that advance plus
team-f from the additional call. Deterministic (fixed seed), so the committed files can be
regenerated and compared. These are invented numbers for the demo and tests, not the
programme's real scores.

  tools/demo/make_samples.py tools/demo
"""
import csv
import os
import random
import sys

# (id, name, panel level 0-1, Bradley-Terry log-strength, mean rating 1-5)
ROUND_1 = [
    ("team-a", "한빛 AI", 0.905, 1.00, 4.6),
    ("team-b", "바다 랩스", 0.80, 0.35, 4.0),
    ("team-c", "산들 모델", 0.74, 0.10, 3.7),
    ("team-d", "누리 테크", 0.62, -0.45, 3.1),
    ("team-e", "강산 AI", 0.86, 0.70, 4.3),
]
ROUND_2 = [
    ("team-a", "한빛 AI", 0.92, 0.90, 4.6),
    ("team-b", "바다 랩스", 0.78, 0.30, 3.9),
    ("team-c", "산들 모델", 0.80, 0.45, 4.1),
    ("team-f", "별빛 연구소", 0.76, 0.20, 3.8),
]
CRITERIA = ["utility", "efficiency", "ripple"]
RATERS = ["expert-%02d" % i for i in range(1, 11)]
USERS = ["user-%02d" % i for i in range(1, 50)]  # 49 specialist users


def write_csv(path, header, rows):
    # A BOM, as spreadsheet programs write UTF-8 CSV: the readers must cope with it.
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def write_round(out, teams, seed):
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    bias = {r: rng.uniform(-0.6, 0.6) for r in RATERS}  # lenient and strict raters
    rows = []
    for r in RATERS:
        for tid, name, level, _, _ in teams:
            for c in CRITERIA:
                s = level * 10 + bias[r] + rng.gauss(0, 0.4)
                s = min(10.0, max(0.0, round(s * 2) / 2))
                rows.append([r, name if rng.random() < 0.3 else tid, c, "%g" % s, "SAMPLE"])
    write_csv(os.path.join(out, "experts.csv"), ["rater", "entrant", "criterion", "score", "comment"], rows)

    battles, n = [], 0
    for u in USERS:
        for _ in range(40):
            a, b = rng.sample(teams, 2)
            pa = 1 / (1 + pow(2.718281828, b[3] - a[3]))
            x = rng.random()
            outcome = "tie" if x < 0.1 else ("A" if rng.random() < pa else "B")
            n += 1
            t = "2026-11-%02dT%02d:%02d:00+09:00" % (1 + n % 13, 9 + n % 9, n % 60)
            battles.append(["b-%05d" % n, u, a[0], b[0], outcome, t])
    write_csv(os.path.join(out, "battles.csv"), ["id", "user", "a", "b", "outcome", "time"], battles)

    ratings, n = [], 0
    for u in USERS:
        for tid, _, _, _, mean in teams:
            n += 1
            s = min(5, max(1, round(rng.gauss(mean, 0.6))))
            t = "2026-11-%02dT%02d:%02d:00+09:00" % (1 + n % 13, 9 + n % 9, n % 60)
            ratings.append(["r-%05d" % n, u, tid, s, t])
    write_csv(os.path.join(out, "ratings.csv"), ["id", "user", "entrant", "score", "time"], ratings)


def main(out):
    write_round(os.path.join(out, "round-1"), ROUND_1, 20261126)
    write_round(os.path.join(out, "round-2"), ROUND_2, 20261224)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
