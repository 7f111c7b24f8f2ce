from tests.pipelines.conftest import NAME, iso
def test_measure(workdir, trained, run_cli):
    inits = trained.times[-8:-2]
    r = run_cli("predict", "--config", trained.config, "--init-time", f"{iso(inits[0])}/{iso(inits[-1])}")
    assert r.code == 0, r.err
    for p in sorted((workdir).rglob("*")):
        if p.is_file(): print(p.stat().st_size, p.relative_to(workdir))
