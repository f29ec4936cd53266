"""``ebpf btf dump`` and ``ebpf btf find`` on files (the kernel is covered by tests/kernel)."""

from __future__ import annotations

import pathlib

import pytest
from test_btf_fixtures import Corpus
from test_btf_synthetic import c_sample

from ebpf.btf import BTF, BTFError, CDumper
from ebpf.cli.btf import run


@pytest.fixture()
def sample_file(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "sample.btf"
    path.write_bytes(c_sample().blob())
    return str(path)


def test_dump_struct(sample_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["dump", "struct flags", "--file", sample_file]) == 0
    assert capsys.readouterr().out == "struct flags {\n\tunsigned int a: 3;\n\tunsigned int b: 5;\n\tint c;\n};\n"


def test_dump_forms(sample_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(["dump", "enum delta", "--file", sample_file])
    assert capsys.readouterr().out.startswith("enum delta {\n\tDOWN = -1,")
    run(["dump", "anon_t", "--file", sample_file])  # bare name
    assert capsys.readouterr().out == "typedef struct {\n\tint x;\n} anon_t;\n"
    run(["dump", "[8]", "--file", sample_file])  # by id
    assert capsys.readouterr().out.startswith("struct flags {")
    run(["dump", "printk", "--file", sample_file])  # no C definition: a declaration
    assert capsys.readouterr().out == "int printk(char *fmt, ...);\n"
    run(["dump", "task_struct", "--file", sample_file])
    assert capsys.readouterr().out == "struct task_struct {\n\tlong: 64;\n\tint pid;\n\tlong: 0;\n};\n"


def test_dump_all(sample_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(["dump", "--all", "--file", sample_file])
    assert capsys.readouterr().out == CDumper(BTF(c_sample().blob())).dump_all()


def test_dump_errors(sample_file: str) -> None:
    with pytest.raises(BTFError, match="no type 'struct nope'"):
        run(["dump", "struct nope", "--file", sample_file])
    with pytest.raises(BTFError, match="unknown kind 'widget'"):
        run(["dump", "widget flags", "--file", sample_file])
    with pytest.raises(BTFError, match="say which type"):
        run(["dump", "--file", sample_file])
    with pytest.raises(BTFError, match="cannot open"):
        run(["dump", "int", "--file", sample_file + ".missing"])
    with pytest.raises(BTFError, match="--base needs --file"):
        run(["dump", "int", "--base", sample_file])


def test_find(sample_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(["find", "task_*", "--file", sample_file])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [["33", "STRUCT", "task_struct___old"], ["34", "STRUCT", "task_struct"]]
    run(["find", "opaque", "--kind", "fwd", "--file", sample_file])  # substring
    assert [line.split()[2] for line in capsys.readouterr().out.splitlines()] == ["opaque", "uopaque"]
    with pytest.raises(BTFError, match="no type name matches"):
        run(["find", "zzz", "--file", sample_file])


def test_split_blob_with_base(corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    module = str(corpus.path("6.1.0-56-amd64-nf_conntrack"))
    base = str(corpus.path("6.1.0-56-amd64"))
    run(["dump", "struct nf_conn_counter", "--file", module, "--base", base])
    assert capsys.readouterr().out == "struct nf_conn_counter {\n\tatomic64_t packets;\n\tatomic64_t bytes;\n};\n"
    run(["find", "nf_conn_counter", "--file", module, "--base", base, "--kind", "struct"])
    assert capsys.readouterr().out.split() == ["100793", "STRUCT", "nf_conn_counter"]
    with pytest.raises(BTFError, match="split BTF"):
        run(["dump", "int", "--file", module])


def test_main_turns_errors_into_one_line(sample_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    from ebpf.cli.main import main

    assert main(["btf", "dump", "struct nope", "--file", sample_file]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no type 'struct nope'" in err
