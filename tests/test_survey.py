"""``bayesifu survey``: a pipeline over cubes on a LocalCluster of 2 workers, compared bit for bit
with the single-process path; failures, resume and bad configurations."""

import json
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import bayesifu as bi
from bayesifu.cli import main
from bayesifu.survey import ConfigError, SurveyConfig, load_config, run_survey
from bayesifu.survey.runner import DONE, FAILED, input_stamp

SNRG = "manga-7815-3702-SNRG.fits.gz"
MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
MUSE = "muse-abell478-cutout.fits.gz"
C_KMS = 299792.458


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _write_generic(cube, path, medium):
    ivar = np.where(np.isfinite(cube.variance), 1.0 / cube.variance, 0.0)
    wave = fits.ImageHDU(cube.wave, name="WAVE")
    wave.header["MEDIUM"] = medium
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.asarray(cube.flux, "f4"), name="FLUX"),
         fits.ImageHDU(ivar.astype("f4"), name="IVAR"), wave]
    ).writeto(path)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def cubes(data_dir, tmp_path_factory):
    """Two small cubes: 8x8 spaxels of the MUSE cut-out, and a simulated MUSE-like disk at
    z = 0.085 (H-alpha line)."""
    folder = tmp_path_factory.mktemp("cubes")
    c = bi.read_cube(data_dir / MUSE)
    sl = (slice(None), slice(10, 18), slice(10, 18))
    real = bi.Cube(np.asarray(c.flux)[sl], np.asarray(c.variance)[sl], c.wave)
    sim = bi.simulate.muse_like(shape=(10, 10), n_exposures=2, seed=1)
    disk = bi.simulate.DiskParams(x0=4.5, y0=4.5, pa=30.0, inc=50.0, vsys=0.085 * C_KMS,
                                  vmax=150.0, rt=2.0)  # fmt: skip
    spec = bi.simulate.LineCubeSpec(wave=np.arange(6950.0, 7300.0, 1.25), line_peak=5.0)
    cube, _ = sim.cube(disk, spec, noise_sigma=0.05, seed=2)
    return [
        _write_generic(real, folder / "real-muse.fits", "air"),
        _write_generic(cube, folder / "sim-disk.fits", "vacuum"),
    ]


@pytest.fixture(scope="module")
def templates(data_dir):
    return [str(data_dir / "sdss-templates" / f"spDR2-02{i}.fit") for i in (3, 4)]


def _config(inputs, output, steps=("info",), **sections):
    sections.setdefault("bin", {"target_sn": 8, "correlation": "gaussian"})
    data = {"inputs": [str(p) for p in inputs], "output": str(output), "steps": list(steps)}
    data.update({k: v for k, v in sections.items() if k in steps})
    return SurveyConfig.from_dict(data)


def _pipeline(cubes, templates, output):
    redshift = {"templates": templates, "zmin": 0.07, "zmax": 0.10, "dispersions": [0],
                "emission_lines": True, "npoly": 2}  # fmt: skip
    return _config(
        cubes, output, ("info", "correlation", "bin", "redshift"),
        correlation={"correlation": "gaussian"}, bin={"target_sn": 8}, redshift=redshift,
    )  # fmt: skip


#: Output file -> extensions compared bit for bit.
COMPARED = {
    "correlation.fits": ["CORREL"],
    "bins.fits": ["BINID", "SN_COVAR", "BINS"],
    "redshift.fits": ["Z_MAP", "Z_MEDIAN", "Z_LO68", "FLAGS"],
}


def _images(path, names):
    with fits.open(path) as hdul:
        return {n: np.array(hdul[n].data) for n in names}


@pytest.mark.slow  # a LocalCluster of 2 worker processes
def test_dask_matches_single_process_bit_for_bit(cubes, templates, tmp_path, client):
    serial = run_survey(_pipeline(cubes, templates, tmp_path / "serial"), scheduler="serial")
    dask = run_survey(_pipeline(cubes, templates, tmp_path / "dask"), client=client)
    assert list(serial["status"]) == list(dask["status"]) == ["done", "done"]
    for stem in ("real-muse", "sim-disk"):
        a, b = tmp_path / "serial" / stem, tmp_path / "dask" / stem
        for name, exts in COMPARED.items():
            x, y = _images(a / name, exts), _images(b / name, exts)
            for ext in exts:
                np.testing.assert_array_equal(x[ext], y[ext], err_msg=f"{stem} {name}[{ext}]")
        assert (b / "info.txt").read_text().splitlines()[1:] == (
            (a / "info.txt").read_text().splitlines()[1:]
        )  # the first line names the file
        digest = _pipeline(cubes, templates, "x").digest()
        assert json.loads((b / DONE).read_text())["digest"] == digest
    for col in ("n_bins", "median_sn", "median_z", "n_z_good", "corr_sigma"):
        np.testing.assert_array_equal(serial[col], dask[col], err_msg=col)
    assert list(dask["corr_source"]) == ["gaussian"] * 2
    # the simulated disk sits at z = 0.085; the real cut-out near 0.0859
    assert abs(dask["median_z"][1] - 0.085) < 1e-3 and abs(dask["median_z"][0] - 0.0859) < 2e-3
    on_disk = Table.read(tmp_path / "dask" / "summary.fits")
    assert list(on_disk["cube"]) == ["real-muse", "sim-disk"]
    # each worker ran JAX in float64
    assert all(client.run(lambda: __import__("jax").config.jax_enable_x64).values())


@pytest.mark.slow  # a LocalCluster of 2 worker processes
def test_failing_cube_recorded_others_finish(cubes, data_dir, tmp_path, client):
    bad = tmp_path / "corrupt.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    inputs = [cubes[0], bad, data_dir / SNRG]
    table = run_survey(_config(inputs, tmp_path / "out"), client=client)
    assert list(table["status"]) == ["done", "failed", "done"]
    assert list(table["format"]) == ["generic-cube", "", "manga-dap-snrg"]
    reason = table["reason"][1]
    assert reason.startswith("input: ") and "corrupt.fits" in reason
    assert not (tmp_path / "out" / "corrupt" / DONE).exists()
    saved = json.loads((tmp_path / "out" / "corrupt" / FAILED).read_text())
    assert saved["record"]["reason"] == reason
    assert table.meta["NFAILED"] == 1


@pytest.mark.slow  # a LocalCluster of 2 worker processes
def test_task_that_dies_is_recorded(cubes, tmp_path, client):
    from bayesifu.survey.runner import _run_dask

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = _config(cubes, tmp_path / "out")
    broken = SurveyConfig(config.inputs, blocker, config.steps, config.options)  # no folder
    records = list(_run_dask(list(config.inputs), broken, config.digest(), client))
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all(r["reason"].startswith("task lost: ") for r in records), records


@pytest.mark.slow  # a LocalCluster of 2 worker processes
def test_resume_skips_finished_redoes_half_done(cubes, data_dir, tmp_path, client):
    inputs = [cubes[0], cubes[1], data_dir / SNRG]
    config = _config(inputs, tmp_path / "out")
    out = tmp_path / "out"
    # an interrupted run: real-muse finished (DONE, nothing else), sim-disk half written
    (out / "real-muse").mkdir(parents=True)
    record = {"cube": "real-muse", "path": str(cubes[0]), "status": "done", "reason": "",
              "seconds": 1.0, "n_warnings": 0, "format": "made-up"}  # fmt: skip
    done = {"digest": config.digest(), "input": input_stamp(cubes[0]), "record": record}
    (out / "real-muse" / DONE).write_text(json.dumps(done))
    (out / ".sim-disk.tmp-0000dead").mkdir()
    (out / ".sim-disk.tmp-0000dead" / "info.txt").write_bytes(b"half")
    (out / "sim-disk").mkdir()  # a folder without DONE: redone
    table = run_survey(config, client=client)
    assert list(table["status"]) == ["skipped", "done", "done"]
    assert table["format"][0] == "made-up"  # the finished cube's record, not recomputed
    assert not (out / "real-muse" / "info.txt").exists()
    assert not list(out.glob(".sim-disk.tmp-*"))
    assert (out / "sim-disk" / DONE).exists() and (out / "sim-disk" / "info.txt").exists()
    # started again: all skipped; with other options: all redone
    assert list(run_survey(config, scheduler="serial")["status"]) == ["skipped"] * 3
    other = _config(inputs, out, ("info", "bin"), bin={"target_sn": 5, "correlation": "none"})
    assert list(run_survey(other, scheduler="serial")["status"]) == ["done"] * 3
    assert (out / "real-muse" / "bins.fits").exists()


@pytest.mark.slow  # a LocalCluster of 2 worker processes
def test_cli_with_scheduler_address(cubes, tmp_path, client, capsys):
    bad = tmp_path / "notfits.fits"
    bad.write_text("not a FITS file")
    (tmp_path / "in").mkdir()
    for p in cubes:
        os.symlink(p, tmp_path / "in" / p.name)
    text = 'inputs = ["in/*.fits", "notfits.fits"]\noutput = "out"\nsteps = ["info"]\n'
    text += "[cluster]\nn_workers = 1\n"
    (tmp_path / "survey.toml").write_text(text)
    address = client.scheduler.address
    argv = ["survey", str(tmp_path / "survey.toml"), "--scheduler", address, "--no-progress"]
    assert main(argv) == 4  # one cube failed
    captured = capsys.readouterr()
    assert "3 cubes: 2 done, 0 skipped (finished earlier), 1 failed" in captured.out
    assert "notfits failed: input:" in captured.err
    table = Table.read(tmp_path / "out" / "summary.fits")
    assert list(table["cube"]) == ["real-muse", "sim-disk", "notfits"]
    assert main(argv) == 4  # the failed cube is tried again, the others skipped
    assert "2 skipped" in capsys.readouterr().out


def test_correlation_step_serial(data_dir, tmp_path):
    snrg = data_dir / SNRG
    auto = _config([snrg], tmp_path / "auto", ("correlation",), correlation={})
    table = run_survey(auto, scheduler="serial")
    assert list(table["corr_source"]) == ["file"]  # the SNRG file's own CORREL table
    written = bi.SpatialCorrelation.from_fits(tmp_path / "auto" / "manga-7815-3702-SNRG" /
                                              "correlation.fits")  # fmt: skip
    own = bi.SpatialCorrelation.from_fits(snrg)
    assert (written.matrix != own.matrix).nnz == 0
    none = _config([snrg], tmp_path / "none", ("correlation",), correlation={"correlation": "none"})
    table = run_survey(none, scheduler="serial")
    assert list(table["status"]) == ["done"] and list(table["corr_source"]) == ["none"]
    assert np.isnan(table["corr_sigma"][0])


@pytest.mark.slow
def test_fit_step_headline(data_dir, tmp_path):
    fit = {"ext": "EMLINE_GVEL", "channel": "Ha-6564", "model": "plane", "chains": 1,
           "draws": 10, "warmup": 10, "no_plots": True, "correlation": "none"}  # fmt: skip
    config = _config([data_dir / MAPS], tmp_path / "out", ("fit",), fit=fit)
    table = run_survey(config, scheduler="serial")
    assert list(table["status"]) == ["done"], list(table["reason"])
    assert not table["fit_converged"][0]  # 10 draws: exit status 3, results still written
    for name in ("z0", "gx", "gy", "scatter"):
        assert np.isfinite(table[f"fit_{name}"][0])
    assert (tmp_path / "out" / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC" / "posterior.nc").exists()


BASE = {"inputs": "IN", "output": "out", "steps": ["bin"], "bin": {"target_sn": 5}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inputs": None}, "inputs: missing"),
        ({"inputs": "nothing-*.fits"}, "inputs: 'nothing-*.fits' matches no file"),
        ({"steps": ["bin", "binning"]}, "steps: unknown step 'binning'"),
        ({"colour": 1}, "colour: unknown key"),
        ({"bin": {"target_sn": "ten"}}, "[bin] argument target_sn: invalid float value"),
        ({"bin": {}}, "[bin] the following arguments are required: target_sn"),
        ({"bin": {"target_snr": 5}}, "[bin] target_snr: unknown option; known: channel"),
        ({"bin": {"target_sn": 5, "out": "x"}}, "[bin] out: set by the survey pipeline"),
        ({"bin": {"target_sn": 5, "method": "kmeans"}}, "[bin] argument method: invalid choice"),
        ({"redshift": {"zmin": 0}}, "[redshift]: options given but 'redshift' is not in steps"),
        (
            {
                "steps": ["redshift"],
                "bin": None,
                "redshift": {"emission_lines": 1, "templates": ["t"]},
            },
            "[redshift] emission_lines: a flag; give true or false",
        ),  # fmt: skip
        (
            {"steps": ["correlation"], "bin": None, "correlation": {"sigma": -1}},
            "[correlation] sigma: needs a number > 0",
        ),  # fmt: skip
        ({"cluster": {"n_workers": 0}}, "[cluster] n_workers: must be >= 1"),
        ({"cluster": {"workers": 2}}, "[cluster] workers: unknown key"),
    ],
)
def test_bad_config_names_the_key(change, message, data_dir):
    data = {**BASE, "inputs": str(data_dir / SNRG), **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        SurveyConfig.from_dict(data)
    assert str(info.value).startswith(message), str(info.value)


def test_bad_config_files(tmp_path, data_dir, capsys):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("steps = [info\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    for d in "ab":
        (tmp_path / d / "x.fits").write_bytes(b"")
    with pytest.raises(ConfigError, match="same name 'x'"):
        SurveyConfig.from_dict({**BASE, "inputs": str(tmp_path / "*" / "x.fits")})
    (tmp_path / "c.toml").write_text('inputs = "x.fits"\noutput = "o"\nsteps = ["fly"]\n')
    assert main(["survey", str(tmp_path / "c.toml")]) == 1
    err = capsys.readouterr().err.strip()
    steps = "info, correlation, bin, redshift, fit"
    assert err == f"bayesifu survey: error: steps: unknown step 'fly'; choose from {steps}"


def test_replaced_input_is_redone(data_dir, tmp_path):
    """A finished cube is skipped only while its input file is the one it was made from."""
    import shutil

    cube = tmp_path / "cube.fits.gz"
    shutil.copy(data_dir / SNRG, cube)
    config = _config([cube], tmp_path / "out")
    assert list(run_survey(config, scheduler="serial")["status"]) == ["done"]
    assert list(run_survey(config, scheduler="serial")["status"]) == ["skipped"]
    shutil.copy(data_dir / MAPS, cube)  # another file under the same name
    assert list(run_survey(config, scheduler="serial")["status"]) == ["done"]


@pytest.mark.slow  # a LocalCluster of 2 worker processes
def test_redshift_field_in_tiles_on_workers_matches_one_process(data_dir, templates, client):
    """One field's rows spread over the 2 workers (tiles of 7 rows: uneven, the last one short)
    give the same summary as the whole cube in this process: flags and peak counts exactly,
    the numbers to round-off (the small batched solves group the spectra differently: 4 of 900
    redshifts differ, by 7e-16; widths by up to 3e-12 of themselves)."""
    from dataclasses import fields

    from bayesifu.redshift import redshift_field, redshift_posterior

    path = data_dir / MUSE
    tpl = bi.read_templates(templates)
    opts = dict(npoly=3, dispersions=(0.0, 150.0), wave_range=(6500.0, 7400.0))
    ref = redshift_posterior(bi.read_cube(path), tpl, (0.05, 0.12), **opts).summary()
    got = redshift_field(path, tpl, (0.05, 0.12), client=client, rows_per_task=7, **opts)
    assert got.z_map.shape == (30, 30) and np.sum(ref.flags == 0) > 100
    for f in fields(ref):
        a, b = getattr(got, f.name), getattr(ref, f.name)
        if np.issubdtype(b.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=0, err_msg=f.name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=f.name)
    with pytest.raises(bi.errors.InputError, match="rows_per_task"):
        redshift_field(path, tpl, (0.05, 0.12), client=client, rows_per_task=0)
