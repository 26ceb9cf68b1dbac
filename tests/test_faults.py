"""The lab under faults, with real processes: Ctrl-C, two runs on one store, abandoned trials."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import lab_problems
from lab_problems import FINISHED_TRIALS, first_trial, small_study, wait_for

STUDY = ["--problems", "quadratic", "--optimizers", "sgd,adam", "--grid", "3", "--seeds", "2", "--steps", "2000",
         "--extend", "0"]


def _run(db, *extra, **kwargs):
    return [sys.executable, "-m", "descentlab", "run", *STUDY, *extra, "--db", db]


def _finished(db) -> dict:
    connection = sqlite3.connect(db, timeout=30)
    try:
        return dict(connection.execute("SELECT key, finished FROM trials WHERE status != 'running'").fetchall())
    finally:
        connection.close()


@pytest.mark.parametrize("workers, group", [(1, False), (2, True)])
def test_ctrl_c_stops_at_once_with_one_line_and_keeps_every_finished_trial(tmp_path, workers, group):
    db = str(tmp_path / "c.sqlite")
    # as from a terminal: SIGINT handled (a shell that starts pytest in the background ignores it, and
    # a child inherits that), in a process group of its own that the signal may be sent to
    process = subprocess.Popen(_run(db, "--workers", str(workers)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(db, FINISHED_TRIALS, 2, process)
    sent = time.monotonic()
    if group:  # as a terminal sends it: to the whole process group, workers included
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    stopped = time.monotonic() - sent
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [line for line in err.splitlines() if line.startswith("descentlab:")]
    assert len(lines) == 1 and "finished trials of this study are saved. Resume with: descentlab run" in lines[0]
    assert stopped < 10, stopped  # a hang check; the time to stop is measured in docs/faults.md's table
    saved = _finished(db)
    assert len(saved) >= 2
    done = subprocess.run(_run(db), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _finished(db)
    assert len(after) == 6 + 2 and all(after[key] == stamp for key, stamp in saved.items())


def test_two_runs_on_one_store_share_the_work_without_duplicates(tmp_path):
    db = str(tmp_path / "shared.sqlite")
    first = subprocess.Popen(_run(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(db, FINISHED_TRIALS, 1, first)
    second = subprocess.Popen(_run(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, [err for _, err in outputs]
    connection = sqlite3.connect(db)
    statuses = connection.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()
    hosts = connection.execute("SELECT COUNT(DISTINCT owner) FROM trials").fetchone()[0]
    studies = connection.execute("SELECT COUNT(*) FROM studies").fetchone()[0]
    connection.close()
    assert dict(statuses) == {"done": 8} and studies == 1  # every trial once, one study
    assert hosts == 2  # both processes ran trials
    tables = [out.split("\nresults:")[0] for out, _ in outputs]
    assert tables[0] == tables[1]  # and both report the same study


@pytest.mark.parametrize("death", ["exited", "killed"])
def test_a_trial_left_running_by_a_dead_process_is_taken_over(tmp_path, death):
    from descentlab.lab import Store, run_study
    from descentlab.lab.store import owner_id

    db = str(tmp_path / "dead.sqlite")
    study = small_study()
    spec = first_trial(study)
    store = Store(db)
    study_id = store.add_study("study", study.to_json())
    if death == "exited":  # it ended without finishing the trial or handing it back
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        store.claim(spec, study_id, "tune", "quadratic", f"{os.uname().nodename}:{dead.stdout.strip()}:gone")
    else:  # SIGKILL while it holds the claim
        holder = subprocess.Popen([sys.executable, lab_problems.__file__, "hold", db, str(study_id)],
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "holding"
        assert store.claim(spec, study_id, "tune", "quadratic", owner_id()) == "taken"  # its owner lives
        holder.kill()
        holder.wait()
        assert holder.returncode == -signal.SIGKILL
    assert store.trial(spec.key)["status"] == "running"
    owner = owner_id()
    assert store.claim(spec, study_id, "tune", "quadratic", owner) == "claimed"  # its owner's pid is gone
    store.release(owner)  # hand it to the study run below, which takes it over at once
    summary = run_study(study, db=db, progress_stream=open(os.devnull, "w"))
    assert summary["complete"] and summary["problems"]["quadratic"]["rows"][0]["seeds"] == 1
    assert store.trial(spec.key)["status"] == "done"


def test_a_lease_held_on_another_host_expires_and_its_trial_is_taken_over(tmp_path):
    from descentlab.lab import Store, run_study
    from descentlab.lab.store import LEASE_SECONDS, owner_id

    db = str(tmp_path / "lease.sqlite")
    study = small_study()
    spec = first_trial(study)
    now = [1000.0]
    store = Store(db, clock=lambda: now[0])
    study_id = store.add_study("study", study.to_json())
    elsewhere = "another-host:1:token"  # a process of another host: only its lease says whether it lives
    assert store.claim(spec, study_id, "tune", "quadratic", elsewhere) == "claimed"
    now[0] += LEASE_SECONDS / 2
    store.renew(elsewhere)  # it renews while it runs
    now[0] += LEASE_SECONDS - 1
    assert store.claim(spec, study_id, "tune", "quadratic", owner_id()) == "taken"
    now[0] += 2  # it stopped renewing: its lease has run out
    assert store.claim(spec, study_id, "tune", "quadratic", owner_id()) == "claimed"

    # end to end: the lease runs out 2 s from now, while a study waits for the trial
    Store(db, clock=lambda: time.time() - LEASE_SECONDS + 2).claim(spec, study_id, "tune", "quadratic", elsewhere)
    summary = run_study(study, db=db, progress_stream=open(os.devnull, "w"))
    assert summary["complete"]
    trial = store.trial(spec.key)
    assert trial["status"] == "done" and trial["owner"] != elsewhere


DIES_ONCE = """
import multiprocessing, os, signal
import torch

def model():
    # the first trial that a worker process starts kills that worker (SIGKILL), once in the study
    if multiprocessing.parent_process() is not None:
        try:
            os.close(os.open("died", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    return torch.nn.Linear(3, 1)

def setup():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g); y = x.sum(1, keepdim=True)
    return dict(model_fn=model, loss_fn=torch.nn.functional.mse_loss,
                train_data=(x[:48], y[:48]), val_data=(x[48:], y[48:]))
"""


def test_a_worker_that_dies_mid_trial_fails_that_trial_and_the_study_goes_on(tmp_path):
    (tmp_path / "dies.py").write_text(DIES_ONCE)
    db = str(tmp_path / "w.sqlite")
    done = _cli("compare", "--entry", "dies:setup", "--budget", "10", "--seeds", "2", "--grid", "2", "--extend", "0",
                "--optimizers", "sgd,adam", "--workers", "2", "--db", db, cwd=tmp_path)
    assert done.returncode == 0 and "verdict" in done.stdout and "Traceback" not in done.stderr, done.stderr
    assert (tmp_path / "died").exists()  # a worker was killed
    connection = sqlite3.connect(db)
    statuses = connection.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()
    errors = [row[0] for row in connection.execute("SELECT error FROM trials WHERE status = 'failed'")]
    connection.close()
    counts = dict(statuses)
    assert counts.pop("failed") == 1 and "worker lost" in errors[0], (statuses, errors)
    # every other trial ran: of 2 optimizers x 2 lrs on seed 0, then seed 1 of each optimizer's choice
    assert sum(counts.values()) == 4 + 2 - 1 and set(counts) <= {"done", "diverged"}, statuses


def test_an_interrupted_study_says_so_ranks_nothing_and_names_the_resume_command(tmp_path):
    db = str(tmp_path / "k.sqlite")
    process = subprocess.Popen(_run(db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(db, FINISHED_TRIALS, 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    shown = subprocess.run([sys.executable, "-m", "descentlab", "show", "1", "--db", db], capture_output=True,
                           text=True)
    assert shown.returncode == 0, shown.stderr
    assert "INCOMPLETE" in shown.stdout and "Resume with: descentlab run --problems quadratic" in shown.stdout
    assert "left running by a process that is gone" in shown.stdout
    from descentlab.lab import Store, summarize

    summary = summarize(Store(db, readonly=True), 1)
    assert not summary["complete"] and summary["verdict"] == [] and not summary["profile"]["steps"]["problems"]
    assert all(row["rank"] is None for row in summary["problems"]["quadratic"]["rows"])


def _store_with_a_study(tmp_path) -> str:
    from descentlab.lab import Study, run_study

    db = str(tmp_path / "s.sqlite")
    run_study(Study(problems=["quadratic"], optimizers=["sgd"], grid=2, span=1.0, seeds=1, steps=40, extend=0),
              db=db, progress_stream=open(os.devnull, "w"))
    return db


def _damage(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.mark.parametrize("damage, message", [
    ("text", "is not a usable results store (file is not a database): give another --db"),
    ("header", "is not a usable results store (file is not a database): give another --db"),
    ("pages", "is damaged ("),
])
def test_a_store_that_is_not_a_store_gets_one_line_and_is_left_as_it_was(tmp_path, damage, message):
    db = _store_with_a_study(tmp_path)
    if damage == "text":
        open(db, "w").write("my notes\n")
    elif damage == "header":
        _damage(db, 0, b"garbage" * 4)
    else:  # a page in the middle of the file: SQLite opens it without complaint
        size = os.path.getsize(db)
        _damage(db, (size // 4096 // 2) * 4096, bytes(range(256)) * 16)  # a whole page, its header included
    before = open(db, "rb").read()
    for command in (_run(db), [sys.executable, "-m", "descentlab", "show", "1", "--db", db]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        if damage == "pages" and command[3] == "show" and done.returncode == 0:
            continue  # reading may not touch the damaged page; writing checks the whole file first
        assert done.returncode == 1 and len(lines) == 1 and db in lines[0], done.stderr
        assert command[3] == "show" or message in lines[0], lines[0]
    assert open(db, "rb").read() == before  # nothing was written into it


def test_a_store_in_a_read_only_place_can_be_shown_but_not_run(tmp_path):
    import shutil

    db = _store_with_a_study(tmp_path)
    folder = os.path.dirname(db)
    if os.geteuid() == 0 and (shutil.which("chattr") is None
                              or subprocess.run(["chattr", "+i", db, folder], capture_output=True).returncode):
        pytest.skip("running as root where chattr +i is unavailable: cannot make the store unwritable")
    if os.geteuid() != 0:
        os.chmod(db, 0o444)
        os.chmod(folder, 0o555)
    try:
        done = subprocess.run(_run(db), capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and "cannot be written" in done.stderr and len(done.stderr.splitlines()) == 1
        done = _cli("report", "--db", db)  # beside the store by default: refused before any drawing
        assert done.returncode == 2 and f"--out: cannot write into {folder}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        shown = subprocess.run([sys.executable, "-m", "descentlab", "show", "1", "--db", db], capture_output=True,
                               text=True)
        assert shown.returncode == 0 and "quadratic" in shown.stdout, shown.stderr
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", db, folder], check=True)
        os.chmod(folder, 0o755)


def _cli(*arguments, **kwargs):
    return subprocess.run([sys.executable, "-m", "descentlab", *arguments], capture_output=True, text=True, **kwargs)


def test_command_line_rough_edges(tmp_path):
    done = _cli("run", "--suite", "quick", "--steps", "abc")
    assert done.returncode == 2 and "argument --steps: must be a positive integer, got abc" in done.stderr
    done = _cli("run", "--suite", "quick", "--span", "wide")
    assert done.returncode == 2 and "argument --span: must be a number, got wide" in done.stderr
    done = _cli("run", "--problems", "beale", "--optimizers", "sgd", "--grid", "3", "--span", "0")
    assert done.returncode == 2 and done.stderr.startswith("usage: descentlab run")  # the study's own usage
    assert "`span` must be > 0 for a grid of 3 points" in done.stderr
    done = _cli("list", "suites", "--data-dir", str(tmp_path))  # --data-dir after the subcommand
    assert done.returncode == 0 and "talk:" in done.stdout


def test_an_unwritable_out_folder_is_refused_before_the_study_runs(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    db = str(tmp_path / "never.sqlite")
    done = _cli("run", "--suite", "quick", "--db", db, "--out", str(blocker / "out"))
    assert done.returncode == 2 and f"--out: cannot write into {blocker / 'out'}" in done.stderr
    assert not os.path.exists(db)  # nothing ran


def test_compare_finds_the_users_module_in_the_current_folder_and_reports_its_syntax_errors(tmp_path):
    (tmp_path / "myexp.py").write_text(
        "import torch\n\n"
        "def setup():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    x = torch.randn(64, 3, generator=g); y = x.sum(1, keepdim=True)\n"
        "    return dict(model_fn=lambda: torch.nn.Linear(3, 1), loss_fn=torch.nn.functional.mse_loss,\n"
        "                train_data=(x[:48], y[:48]), val_data=(x[48:], y[48:]))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = _cli("compare", "--entry", "myexp:setup", "--budget", "10", "--seeds", "2", "--grid", "2",
                "--optimizers", "sgd,adam", cwd=tmp_path, env=env)
    assert done.returncode == 0 and "verdict" in done.stdout, done.stderr
    (tmp_path / "broken.py").write_text("import torch\n\ndef setup(:\n    pass\n")
    done = _cli("compare", "--entry", "broken:setup", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "broken.py, line 3: " in done.stderr and done.stderr.startswith("usage: descentlab compare")
