"""The trajectory modality: PointMaze env and walls, the data-generating controller, the D4RL-layout loader and its
errors, the normalizer in the checkpoint, start/goal held exactly by every Gaussian sampler, PD tracking, and the
smoke recipe (train -> plan -> closed-loop rollout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, compose_train

from diffkit.config import build_module, load, load_any
from diffkit.export import export
from diffkit.modalities.base import DataError
from diffkit.modalities.trajectory.adapter import TrajectoryModality
from diffkit.modalities.trajectory.dataset import episode_ids, generate_stream, load_stream, save_stream, window_starts
from diffkit.modalities.trajectory.maze import Maze, WaypointController, make_env
from diffkit.modalities.trajectory.rollout import (
    Pairs,
    controller_policy,
    path_policy,
    plan_policy,
    run_episodes,
    scores,
)

pytestmark = pytest.mark.filterwarnings("ignore")
GAUSSIAN_SAMPLERS = sorted(p.stem for p in (ROOT / "conf" / "sampler").glob("*.yaml")
                           if not p.stem.startswith(("masked", "tau_leaping")))  # fmt: skip


@pytest.fixture(autouse=True)
def _maze_xml_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # gymnasium-robotics writes maze XML to the temp folder


def _reset(env, cell: tuple[int, int]) -> np.ndarray:
    obs, _ = env.reset(seed=0, options={"reset_cell": np.array(cell), "goal_cell": np.array([3, 1])})
    return obs["observation"]


def test_env_resets_in_the_cell_and_walls_block_motion() -> None:
    env, maze = make_env("umaze"), Maze.of("umaze")
    state = _reset(env, (1, 1))
    assert tuple(maze.xy_cell(state[:2])) == (1, 1) and np.allclose(state[2:], 0)
    for _ in range(100):  # push down: the wall row (cells (2,1), (2,2)) lies between y = 0.5 and y = -0.5
        state = env.step(np.array([0.0, -1.0], np.float32))[0]["observation"]
    assert state[1] > 0.4, state
    state = start = _reset(env, (1, 1))
    for _ in range(30):  # pushing right along the free corridor moves
        state = env.step(np.array([1.0, 0.0], np.float32))[0]["observation"]
    assert state[0] > start[0] + 0.5, state
    env.close()


def test_shortest_path_and_controller_reach_the_goal_around_the_wall() -> None:
    maze = Maze.of("umaze")
    assert maze.shortest_path((1, 1), (3, 1)) == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]
    pairs = Pairs(np.array([[1, 1], [3, 3]]), np.array([[3, 1], [1, 1]]), np.array([1, 2]))
    result = run_episodes("umaze", pairs, controller_policy("umaze"))
    assert result["success"].tolist() == [1.0, 1.0] and (result["returns"] > 100).all()


def test_pd_tracking_of_a_feasible_plan_reaches_the_goal() -> None:
    """The controller's own executed states, used as a plan, are tracked to the goal by Diffuser's PD law."""
    pairs = Pairs(np.array([[1, 1]]), np.array([[3, 1]]), np.array([5]))
    expert = run_episodes("umaze", pairs, controller_policy("umaze"), steps=150)
    env = make_env("umaze", 150)
    controller = WaypointController(Maze.of("umaze"))
    obs, _ = env.reset(seed=5, options={"reset_cell": np.array([1, 1]), "goal_cell": np.array([3, 1])})
    states, goal = [obs["observation"]], obs["desired_goal"]
    controller.set_goal(states[0][:2], goal)
    for _ in range(127):
        states.append(env.step(controller(states[-1]).astype(np.float32))[0]["observation"])
    env.close()
    plan = np.stack(states)[None]
    tracked = run_episodes("umaze", pairs, plan_policy(lambda s, g: plan), steps=150)
    assert tracked["success"][0] == 1.0 and tracked["returns"][0] >= 0.8 * expert["returns"][0]
    followed = run_episodes("umaze", pairs, path_policy(lambda s, g: plan), steps=150)  # the plan as waypoints
    assert followed["success"][0] == 1.0 and followed["returns"][0] >= 0.8 * expert["returns"][0]


def test_stream_fields_windows_and_round_trip(tmp_path: Path) -> None:
    stream = generate_stream("umaze", 600, seed=3)
    assert stream["observations"].shape == (600, 4) and stream["actions"].shape == (600, 2)
    assert np.abs(stream["actions"]).max() <= 1 and not stream["terminals"].any() and stream["timeouts"][-1]
    loaded = load_stream(save_stream(stream, tmp_path / "u.npz"))
    assert np.array_equal(loaded["observations"], stream["observations"]) and int(loaded["seed"]) == 3
    episodes = episode_ids(np.zeros(10, bool), np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 1], bool))
    assert window_starts(episodes, 3).tolist() == [0, 1, 4, 5, 6, 7]  # no window crosses the end at step 3


def _fields(n: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    fields = {"observations": rng.normal(size=(n, 4)).astype(np.float32), "actions": np.zeros((n, 2), np.float32)}
    flags = {"terminals": np.zeros(n, bool), "timeouts": np.eye(1, n, n - 1)[0] > 0}
    return {**fields, "rewards": np.zeros(n, np.float32), **flags}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("actions"), "actions"),
        (lambda d: d["rewards"].__setitem__(3, np.nan), "rewards"),
        (lambda d: d.__setitem__("observations", d["observations"][:, :2]), "observations"),
        (lambda d: d.__setitem__("terminals", np.zeros((20, 2), bool)), "terminals"),
        (lambda d: d.__setitem__("timeouts", np.zeros(19, bool)), "timeouts"),
    ],  # fmt: skip
    ids=["missing", "nan", "narrow", "ndim", "rows"],
)
def test_a_bad_file_gives_one_error_naming_file_and_field(tmp_path: Path, change, field: str) -> None:
    data = _fields()
    change(data)
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    with pytest.raises(DataError) as err:
        load_stream(path)
    assert str(path) in str(err.value) and repr(field) in str(err.value)


def test_d4rl_and_minari_hdf5_files_load(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    data = _fields()
    with h5py.File(tmp_path / "d4rl.hdf5", "w") as f:
        for key, value in data.items():
            f[key] = value
    assert np.array_equal(load_stream(tmp_path / "d4rl.hdf5")["observations"], data["observations"])
    with h5py.File(tmp_path / "minari.hdf5", "w") as f:
        for k in range(2):  # Minari: N + 1 observations per episode, observation dicts, terminations/truncations
            ep = f.create_group(f"episode_{k}")
            ep["observations/observation"] = np.full((6, 4), k, np.float32)
            ep["actions"], ep["rewards"] = np.zeros((5, 2), np.float32), np.zeros(5)
            ep["terminations"], ep["truncations"] = np.zeros(5, bool), np.eye(1, 5, 4)[0] > 0
    stream = load_stream(tmp_path / "minari.hdf5")
    assert stream["observations"].shape == (10, 4) and stream["timeouts"].nonzero()[0].tolist() == [4, 9]


def test_normalizer_round_trip_and_checkpoint_state() -> None:
    modality = TrajectoryModality(horizon=8)
    with pytest.raises(DataError, match="normalizer"):
        modality.normalize(torch.zeros(4))
    modality.fit([-2.0, -1.0, -5.0, -5.0], [2.0, 3.0, 5.0, 5.0])
    states = torch.rand(3, 8, 4) * 2 - 1
    x0, cond = modality.encode({"states": states})
    assert x0.shape == (3, 4, 8) and cond == {} and x0.abs().max() <= 1
    assert torch.allclose(modality.decode(x0), states, atol=1e-6)
    fresh = TrajectoryModality(horizon=8)
    fresh.load_state_dict(modality.state_dict())
    assert torch.equal(fresh.decode(x0), modality.decode(x0))
    with pytest.raises(DataError, match="states"):
        modality.encode({"states": torch.zeros(3, 7, 4)})


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, dict]:
    from diffkit.train import run

    out = tmp_path_factory.mktemp("traj")
    cfg = compose_train(["recipe=smoke/trajectory", f"paths.data_dir={out / 'data'}"], out / "run")
    return out, run(cfg)


def test_smoke_recipe_trains_plans_and_rolls_out(smoke_run) -> None:
    out, metrics = smoke_run
    for key in ("train/loss", "val/loss", "test/success", "test/score", "test/controller_success"):
        assert key in metrics and metrics[key] == metrics[key], key
    assert metrics["test/plan_start_error"] < 1e-5  # the plan starts exactly at the env's start state
    assert list((out / "run" / "samples" / "final").glob("*.png"))
    module = load(out / "run" / "checkpoints" / "last.ckpt")
    assert bool(module.modality.fitted)  # the normalizer came back from the checkpoint, not from a file
    normalizer = next((out / "data" / "pointmaze" / "out").glob("*.normalizer.json"))
    stats = json.loads(normalizer.read_text())
    assert module.modality.low.tolist() == pytest.approx(stats["low"])
    exported = export(out / "run" / "checkpoints" / "last.ckpt", out / "exported")
    normalizer.rename(normalizer.with_suffix(".moved"))  # the exported folder must not need the data folder
    try:
        loaded = load_any(exported)
    finally:
        normalizer.with_suffix(".moved").rename(normalizer)
    assert bool(loaded.modality.fitted) and torch.equal(loaded.modality.high, module.modality.high)


@pytest.mark.parametrize("sampler", GAUSSIAN_SAMPLERS)
def test_every_sampler_holds_start_and_goal_exactly(sampler: str, tmp_path: Path) -> None:
    module = build_module(compose_train(["recipe=smoke/trajectory", f"sampler={sampler}"], tmp_path))
    module.modality.fit([-2.0, -2.0, -5.0, -5.0], [2.0, 2.0, 5.0, 5.0])
    start, goal = torch.tensor([[-1.0, 1.0, 0.5, -0.5]] * 2), torch.tensor([[-1.0, -1.0]] * 2)
    request = module.modality.plan_request(start, goal)
    x = module.sample(2, known=request.known, mask=request.mask, steps=3, generator=torch.Generator().manual_seed(0))
    given = request.mask.bool()
    assert torch.equal(x[given], request.known[given]) and torch.isfinite(x).all()
    plans = module.modality.decode(x)
    assert torch.allclose(plans[:, 0], start, atol=1e-6) and torch.allclose(plans[:, -1, :2], goal, atol=1e-6)


def test_scores_use_the_measured_references() -> None:
    random, expert = {"returns": np.array([0.0, 10.0])}, {"returns": np.array([100.0, 110.0])}
    result = {"returns": np.array([105.0, 105.0]), "success": np.array([1.0, 1.0])}
    out = scores(result, random, expert, "umaze")
    assert out["score"] == pytest.approx(100.0) and out["score_se"] == 0 and out["success"] == 1.0
    with pytest.raises(ValueError, match="not above"):
        scores(result, expert, random, "umaze")


def test_avoid_request_steers_plans_out_of_a_disk_and_keeps_start_and_goal(smoke_run, tmp_path: Path) -> None:
    """Cost guidance through the request: same noise, same model; the guided plans enter the disk less deeply."""
    from diffkit.modalities.trajectory.guidance import disk_intrusion
    from diffkit.sample import run as sample

    out, _ = smoke_run
    module = load(out / "run" / "checkpoints" / "last.ckpt")
    start, goal, disk = [-1.0, 1.0, 0.0, 0.0], [1.0, 1.0], [0.0, 1.0, 0.7]  # the straight line crosses the disk
    plain = module.modality.request(8, start=start, goal=goal)
    steered = module.modality.request(8, start=start, goal=goal, avoid=disk, avoid_scale=200.0)
    assert plain.guide is None and steered.guide is not None
    cost = disk_intrusion(module.modality.unnormalize, disk[:2], disk[2])

    def plans(request):
        return module.sample(8, known=request.known, mask=request.mask, guide=request.guide, steps=8,
                             generator=torch.Generator().manual_seed(0))  # fmt: skip

    x_plain, x_steered = plans(plain), plans(steered)
    given = steered.mask.bool()
    assert torch.equal(x_steered[given], steered.known[given])  # start and goal still held exactly
    assert cost(x_steered).mean() < 0.5 * cost(x_plain).mean(), (cost(x_steered).mean(), cost(x_plain).mean())
    with pytest.raises(DataError, match="avoid must be"):
        module.modality.request(2, avoid=[0.0, 1.0])
    sample(compose_train([f"ckpt={out / 'run' / 'checkpoints' / 'last.ckpt'}", "n=2", "steps=3",
                          "+request.avoid=[0.0,1.0,0.7]"], tmp_path, config_name="sample"))  # fmt: skip
    assert list(tmp_path.glob("samples_step*.png"))  # the CLI passes the request's guide to the sampler


def test_the_maze_env_starts_quietly() -> None:
    """gymnasium-robotics prints a notice about its Adroit hand envs on import; a maze user never sees it."""
    import subprocess
    import sys

    code = "from diffkit.modalities.trajectory.maze import Maze, make_env; Maze.of('umaze'); make_env('umaze').close()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Adroit" not in proc.stderr and "Adroit" not in proc.stdout, proc.stderr
