"""Energy counters (enginebench.energy): what the bench reads around each timed run, or why it reads none."""

from pathlib import Path

from enginebench import energy


def zone(root: Path, name: str, energy_uj: int, max_range_uj: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return folder


def test_rapl_sums_the_packages_and_survives_a_wrap(tmp_path, monkeypatch):
    """The layout of Linux's powercap class (Documentation/power/powercap/powercap.rst): one
    intel-rapl:N zone per CPU package, energy_uj counting up to max_energy_range_uj and wrapping."""
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    first = zone(tmp_path, "intel-rapl:0", 999_000_000, 1_000_000_000)
    second = zone(tmp_path, "intel-rapl:1", 5_000_000, 1_000_000_000)
    zone(tmp_path, "intel-rapl:0:0", 0, 1_000_000_000)  # a sub-zone (core) of package 0: not counted again
    read, what = energy.counter("cpu")
    assert read is not None and "CPU packages (2)" in what and "every process" in what
    start = read()
    (first / "energy_uj").write_text("2000000\n")  # wrapped: 1,000,000 µJ to the top, then 2,000,000
    (second / "energy_uj").write_text("8000000\n")  # +3,000,000 µJ
    assert read() - start == 6.0  # joules


def test_no_counter_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "absent")
    read, why = energy.counter("cpu")
    assert read is None and "no RAPL energy counter" in why
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    unreadable = zone(tmp_path, "intel-rapl:0", 1, 10)
    (unreadable / "energy_uj").unlink()  # root-only since Linux 5.10 on many hosts: unreadable to the bench
    read, why = energy.counter("cpu")
    assert read is None and "not readable" in why


def test_a_gpu_engine_without_the_nvidia_driver_says_so(monkeypatch):
    """On this host there is no libnvidia-ml: a CUDA engine's bench would record why it has no figure."""
    import ctypes.util

    if ctypes.util.find_library("nvidia-ml"):
        import pytest

        pytest.skip("this host has the NVIDIA driver's libnvidia-ml")
    read, why = energy.counter("cuda:0")
    assert read is None and "libnvidia-ml could not be loaded" in why
