"""bench.report: schedule choice per card, ratios to the 0-0-50 run, and a small end-to-end report."""

import json
import os

import pytest
import torch

from bench.report import (
    TABLE_HEADER,
    add_ratios,
    main,
    relevant_schedules,
    report_models,
    warm_up_schedule,
)
from engine.zoo import RANDOM_TINY, ModelCard, random_tiny_card, zoo_models

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips these for a quick loop

N = 4  # prompts: the fourth is a held-out composition
SIZE = ["--frames", "17", "--height", "64", "--width", "64"]


def test_relevant_schedules_follow_the_card():
    assert relevant_schedules(ModelCard(pyramidal=True)) == [
        "0-0-50",
        "20-20-10",
        "10-10-5",
        "4-4-2",
        "2-2-1",
    ]
    assert relevant_schedules(ModelCard(pyramidal=False)) == ["0-0-50", "0-0-20", "20-20-10"]
    distilled = ModelCard(pyramidal=True, step_rule="x0", schedule="2-2-1", guidance=1.0)
    assert relevant_schedules(distilled) == ["2-2-1", "1-1-1", "2-2-2", "0-0-4", "0-0-2", "0-0-1"]
    # The card's own default is added; schedules that do not fit the stage count are dropped.
    assert relevant_schedules(random_tiny_card()) == ["0-0-50", "0-0-20", "20-20-10", "2-2-1"]
    assert relevant_schedules(ModelCard(num_stages=2, schedule="10,5")) == ["10-5"]


def test_models_default_to_the_zoo_else_random_tiny():
    assert report_models(None) == (zoo_models() or [RANDOM_TINY])
    assert report_models(["a", "b"]) == ["a", "b"]


def test_warm_up_takes_one_step_per_active_stage():
    assert warm_up_schedule("20-20-10") == "1-1-1"
    assert warm_up_schedule("0-0-50") == "0-0-1"


def _row(model, schedule, seconds, tflops, step_rule="euler", pyramidal=False):
    return dict(
        model=model,
        schedule=schedule,
        seconds_per_video=seconds,
        tflops_per_video=tflops,
        step_rule=step_rule,
        pyramidal=pyramidal,
    )


def test_ratios_are_to_the_own_baseline_else_the_plain_models():
    rows = [
        _row("pyr", "20-20-10", 3.0, 22.0, pyramidal=True),
        _row("pyr", "0-0-50", 10.0, 100.0, pyramidal=True),
        _row("plain", "0-0-50", 8.0, 100.0),
        _row("dmd", "2-2-1", 0.2, 1.0, step_rule="x0", pyramidal=True),
    ]
    add_ratios(rows)
    pyr, base, plain, dmd = rows
    assert pyr["seconds_ratio"] == pytest.approx(0.3) and pyr["tflops_ratio"] == pytest.approx(0.22)
    assert base["seconds_ratio"] == 1 and pyr["baseline"] == "pyr 0-0-50"
    # A distilled model has no 0-0-50 run: it is compared with the plain (not finetuned) model's.
    assert dmd["baseline"] == "plain 0-0-50" and dmd["seconds_ratio"] == pytest.approx(0.025)
    lonely = [_row("dmd", "2-2-1", 0.2, 1.0, step_rule="x0")]
    add_ratios(lonely)
    assert lonely[0]["baseline"] is None and lonely[0]["seconds_ratio"] is None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    argv = ["--models", RANDOM_TINY, "--n", str(N), *SIZE, "--threads", "1"]
    argv += ["--out", str(out / "RESULTS.md"), "--plot", str(out / "plot.png"), "--json", str(out / "r.json")]
    threads = torch.get_num_threads()
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return out, argv


def _table(markdown: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert set(lines[1].replace("|", "")) == {"-"}
    return cells[0], cells[2:]


def test_report_table_has_every_schedule_with_numbers_in_range(report):
    out, argv = report
    markdown = (out / "RESULTS.md").read_text()
    header, rows = _table(markdown)
    assert header == list(TABLE_HEADER)
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["schedule"]] for r in rows] == ["0-0-50", "0-0-20", "20-20-10", "2-2-1"]
    assert all(r[col["model"]] == RANDOM_TINY and r[col["n"]] == str(N) for r in rows)
    by = {r[col["schedule"]]: r for r in rows}
    tflops = {s: float(r[col["TFLOPs / video"]]) for s, r in by.items()}
    assert tflops["0-0-50"] > tflops["0-0-20"] > tflops["20-20-10"] > tflops["2-2-1"] > 0
    # The plain 0-0-50 run with CFG: 50 steps x 2 forwards, 2.5x the FLOPs of 0-0-20.
    assert tflops["0-0-50"] / tflops["0-0-20"] == pytest.approx(2.5, rel=0.01)
    for s, r in by.items():
        assert float(r[col["FLOPs ratio"]]) == pytest.approx(tflops[s] / tflops["0-0-50"], rel=0.01)
        assert float(r[col["s / video"]]) > 0 and float(r[col["measured ratio"]]) > 0
        for name in ("shape", "color", "background", "motion", "all", "all, held-out", "in every frame"):
            assert 0 <= float(r[col[name]]) <= 100, name
        assert r[col["size stable"]] == "—" or 0 <= float(r[col["size stable"]]) <= 100
        assert float(r[col["chunk motion"]]) > 0
        assert float(r[col["FD"]]) > 0 and float(r[col["FD floor"]]) > 0
    assert by["0-0-50"][col["measured ratio"]] == "1.00" and by["0-0-50"][col["FLOPs ratio"]] == "1.00"
    # Random weights draw noise: far from real clips, which are close to each other.
    assert all(float(r[col["FD"]]) > 3 * float(r[col["FD floor"]]) for r in rows)
    # How it was made, when and where; the plot is linked relative to the table.
    assert f"`python -m bench.report {' '.join(argv)}`" in markdown
    assert f"{os.cpu_count()} CPUs" in markdown and " UTC" in markdown and "torch " in markdown
    assert "![all-attributes adherence vs compute](plot.png)" in markdown


def test_measured_ratio_is_measured_not_derived_from_flops(report):
    out, _ = report
    rows = {r["schedule"]: r for r in json.loads((out / "r.json").read_text())["rows"]}
    base = rows["0-0-50"]
    for r in rows.values():
        assert r["seconds_ratio"] == pytest.approx(r["seconds_per_video"] / base["seconds_per_video"])
        assert r["n"] == N and r["n_heldout"] == 1 and r["frames"] == 17 and r["height"] == 64


def test_plot_is_a_png_with_content(report):
    import matplotlib.image

    out, _ = report
    path = out / "plot.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_bad_arguments_fail_with_a_message(report, tmp_path, capsys):
    out = ["--out", str(tmp_path / "R.md"), "--plot", str(tmp_path / "p.png")]
    assert main(["--models", RANDOM_TINY, "--n", "2", "--schedules", "5-5", *SIZE, *out]) == 2
    err = capsys.readouterr().err
    assert "random-tiny" in err and "'5-5'" in err and "3 stages" in err
    assert main(["--n", "1", *out]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()


def test_contact_sheet_has_a_row_per_prompt_and_its_real_render(tmp_path):
    from PIL import Image

    from bench import contact

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red square moving left on a black background\na blue circle growing over gray\n")
    out = tmp_path / "sheet.png"
    argv = ["--model", RANDOM_TINY, "--schedule", "0-0-1", "--prompts-file", str(prompts), "--columns", "3"]
    assert contact.main([*argv, "--out", str(out)]) == 0
    one = Image.open(out).size
    assert contact.main([*argv, "--real", "--out", str(tmp_path / "real.png")]) == 0
    two = Image.open(tmp_path / "real.png").size
    assert one[0] == two[0] and two[1] > 1.8 * one[1]  # the real render adds a row under each prompt's


def test_contact_sheet_names_what_toybench_reads_in_each_row(tmp_path, capsys):
    """Under each generated row the probe's reading of the main object and its centroid track, marked
    against the caption: a real render of the default prompt reads as captioned, a wrong reading is
    named with the caption's value; --json prints the readings for every prompt."""
    from bench import contact
    from bench.probe import load_probe
    from world import parse, render_batch

    prompt = "a red circle moving left on a black background"
    read = contact.reading(load_probe(), render_batch([parse(prompt)], 0)[0], prompt)
    probe_reads = {k: read[k]["probe"] for k in contact.READ}
    assert probe_reads == {"shape": "circle", "color": "red", "motion": "left"}
    assert read["motion"]["track"] == "left" and "(not" not in contact.describe(read)
    read["shape"]["probe"] = "square"
    assert "square (not circle)" in contact.describe(read)

    prompts = tmp_path / "p.txt"
    prompts.write_text(f"{prompt}\na blue square rotating slowly on a gray background\n")
    argv = ["--model", RANDOM_TINY, "--schedule", "0-0-1", "--prompts-file", str(prompts), "--columns", "2"]
    assert contact.main([*argv, "--json", "--out", str(tmp_path / "sheet.png")]) == 0
    readings = json.loads(capsys.readouterr().out.splitlines()[-1])["readings"]
    assert [(r["seed"], r["shape"]["caption"], r["motion"]["caption"]) for r in readings] == [
        (0, "circle", "left"),
        (1, "square", "rotate"),
    ]


def test_examples_scores_each_prompt_over_its_seeds(tmp_path, capsys):
    """bench.examples: one row per prompt, each over --seeds videos; a bad prompt or too few seeds is one
    line on stderr and exit code 2."""
    from bench import examples

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle moving left on a black background\na blue square rotating on gray\n")
    argv = ["--model", RANDOM_TINY, "--schedule", "0-0-1", "--prompts-file", str(prompts), "--seeds", "2"]
    assert examples.main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["prompts"]
    assert out["seeds"] == 2 and [r["prompt"] for r in rows] == prompts.read_text().splitlines()
    assert all(0 <= r[k] <= 1 for r in rows for k in (*examples.COLUMNS, "present_all_frames"))
    assert all(r["fd"] > 0 and r["fd_floor"] >= 0 for r in rows)
    assert examples.main(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].startswith("| prompt |") and len(table) == 3 + len(rows)
    assert examples.main([*argv[:-1], "1"]) == 2 and "at least 2" in capsys.readouterr().err
    prompts.write_text("a red circle moving sideways\n")
    assert examples.main(argv) == 2 and "sideways" in capsys.readouterr().err
