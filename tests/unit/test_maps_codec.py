"""Codecs: ints, bytes, C strings, arrays, structs with C alignment, the plug-in protocol."""

from __future__ import annotations

import ctypes
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpf.errors import CodecError
from ebpf.maps.codec import (
    INT_TYPES,
    ArrayCodec,
    BytesCodec,
    CharArrayCodec,
    Codec,
    IntCodec,
    StructCodec,
    VoidCodec,
    codec_for,
)
from ebpf.maps.lpmkey import LpmKey, LpmKeyCodec, lpm_key
from ebpf.maps.ringbuf import record_decoder

INT_RANGES = {
    name: (-(1 << (c.size * 8 - 1)), (1 << (c.size * 8 - 1)) - 1) if c.signed else (0, (1 << c.size * 8) - 1)
    for name, c in INT_TYPES.items()
}


@pytest.mark.parametrize("name", sorted(INT_TYPES))
def test_int_bounds_round_trip(name: str) -> None:
    codec = codec_for(name)
    lo, hi = INT_RANGES[name]
    for v in (lo, hi, 0 if lo <= 0 else lo):
        assert codec.decode(codec.encode(v)) == v
    assert len(codec.encode(hi)) == codec.size == codec.align


@pytest.mark.parametrize("name", sorted(INT_TYPES))
def test_int_out_of_range_names_value_and_type(name: str) -> None:
    codec = codec_for(name)
    lo, hi = INT_RANGES[name]
    for bad in (hi + 1, lo - 1):
        with pytest.raises(CodecError) as e:
            codec.encode(bad)
        assert str(bad) in str(e.value) and name in str(e.value)
    with pytest.raises(CodecError):
        codec.encode(1.5)
    with pytest.raises(CodecError):
        codec.encode("1")


@given(st.sampled_from(sorted(INT_TYPES)), st.data())
def test_int_round_trip_property(name: str, data: st.DataObject) -> None:
    lo, hi = INT_RANGES[name]
    v = data.draw(st.integers(lo, hi))
    codec = INT_TYPES[name]
    buf = bytearray(3 + codec.size)
    codec.pack_into(buf, 3, v)
    assert codec.unpack_from(buf, 3) == v
    assert codec.encode(v) == struct.pack("=" + codec.fmt, v)


def test_int_aliases() -> None:
    assert codec_for("uint32_t") is INT_TYPES["u32"]
    assert codec_for("__s64") is INT_TYPES["i64"]
    assert codec_for("int") is INT_TYPES["i32"]
    assert codec_for("unsigned long") is INT_TYPES["u64"]
    assert codec_for(int, 2) is INT_TYPES["u16"]
    with pytest.raises(CodecError, match="unknown type"):
        codec_for("u33")


def test_decode_wrong_length() -> None:
    with pytest.raises(CodecError, match="needs 4 bytes, got 3"):
        INT_TYPES["u32"].decode(b"abc")


def test_bytes_codec() -> None:
    c = codec_for(6)
    assert isinstance(c, BytesCodec) and c.size == 6
    assert c.decode(c.encode(b"abcdef")) == b"abcdef"
    assert c.encode(bytearray(b"123456")) == b"123456"
    with pytest.raises(CodecError, match="got 5 bytes"):
        c.encode(b"abcde")
    with pytest.raises(CodecError, match="expected bytes, got str"):
        c.encode("abcdef")
    assert codec_for(None, 8).size == 8
    assert isinstance(codec_for(None, 0), VoidCodec)
    assert codec_for("bytes[3]").encode(b"xyz") == b"xyz"


def test_char_array() -> None:
    c = codec_for("char[8]")
    assert isinstance(c, CharArrayCodec)
    assert c.encode("bash") == b"bash\0\0\0\0"
    assert c.decode(b"bash\0xyz") == b"bash"
    assert c.decode(b"12345678") == b"12345678"
    with pytest.raises(CodecError):
        c.encode("123456789")


def test_array_codec() -> None:
    c = codec_for("u16[3]")
    assert isinstance(c, ArrayCodec) and c.size == 6 and c.align == 2
    assert c.decode(c.encode([1, 2, 65535])) == [1, 2, 65535]
    with pytest.raises(CodecError, match="expected 3 elements"):
        c.encode([1, 2])
    with pytest.raises(CodecError, match="70000"):
        c.encode([1, 2, 70000])
    nested = codec_for("char[2][4]")  # C order: two char[4]
    assert nested.size == 8
    assert nested.decode(nested.encode([b"ab", "cd"])) == [b"ab", b"cd"]
    grid = codec_for("u8[2][3]")
    assert grid.decode(bytes(range(6))) == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(CodecError, match="bad array length"):
        codec_for("u8[x]")


def test_struct_layout_follows_c_alignment() -> None:
    c = StructCodec([("a", "u8"), ("b", "u64"), ("c", "u16"), ("d", "char[3]")], name="S")
    assert c.offsets == [0, 8, 16, 18]
    assert c.size == 24 and c.align == 8
    v = c.decode(c.encode((1, 2, 3, b"xy")))
    assert (v.a, v.b, v.c, v.d) == (1, 2, 3, b"xy")
    assert type(v).__name__ == "S"
    ints = StructCodec([("pid", "u32"), ("ts", "u64")])
    assert ints.size == 16 and ints.offsets == [0, 8]
    raw = ints.encode({"pid": 7, "ts": 9})
    assert raw == struct.pack("=I4xQ", 7, 9)


def test_struct_inputs_and_dict_output() -> None:
    c = StructCodec([("pid", "u32"), ("comm", "char[16]")], as_dict=True)
    assert c.decode(c.encode({"pid": 5})) == {"pid": 5, "comm": b""}

    class Obj:
        pid = 3
        comm = "sh"

    assert c.decode(c.encode(Obj())) == {"pid": 3, "comm": b"sh"}
    with pytest.raises(CodecError, match="no field"):
        c.encode({"pid": 1, "nope": 2})
    with pytest.raises(CodecError, match="expected 2 fields"):
        c.encode((1,))
    with pytest.raises(CodecError, match="pid"):
        c.encode((-1, "x"))


def test_struct_nested_and_padding_zeroed() -> None:
    inner = StructCodec([("x", "u8"), ("y", "u32")])
    outer = codec_for([("tag", "u8"), ("inner", inner), ("arr", "u8[3]")])
    assert isinstance(outer, StructCodec)
    assert outer.offsets == [0, 4, 12] and outer.size == 16
    buf = bytearray(b"\xff" * outer.size)
    outer.pack_into(buf, 0, (1, (2, 3), [4, 5, 6]))
    assert bytes(buf) == bytes([1, 0, 0, 0, 2, 0, 0, 0]) + struct.pack("=I", 3) + bytes([4, 5, 6, 0])
    v = outer.decode(bytes(buf))
    assert v.inner.y == 3 and v.arr == [4, 5, 6]


def test_struct_bad_fields() -> None:
    with pytest.raises(CodecError):
        StructCodec([])
    with pytest.raises(CodecError, match="duplicate"):
        StructCodec([("a", "u8"), ("a", "u8")])
    with pytest.raises(CodecError):
        StructCodec([("a", "u8", 1)])  # type: ignore[list-item]


def test_plugin_protocol() -> None:
    class Pid:
        @classmethod
        def __ebpf_codec__(cls) -> Codec:
            return INT_TYPES["u32"]

    assert codec_for(Pid) is INT_TYPES["u32"]
    assert codec_for(Pid, 4) is INT_TYPES["u32"]
    with pytest.raises(CodecError, match="4 bytes but the map's element is 8"):
        codec_for(Pid, 8)

    class Bad:
        def __ebpf_codec__(self) -> object:
            return 3

    with pytest.raises(CodecError, match="not a Codec"):
        codec_for(Bad())
    c = IntCodec(2)
    assert codec_for(c) is c


def test_ctypes_and_struct_format() -> None:
    class Pt(ctypes.Structure):
        _fields_ = [("x", ctypes.c_uint32), ("y", ctypes.c_uint64)]

    c = codec_for(Pt)
    assert c.size == 16
    p = c.decode(c.encode((1, 2)))
    assert (p.x, p.y) == (1, 2)
    u = codec_for(ctypes.c_uint16)
    assert u.decode(u.encode(513)) == 513
    s = codec_for(struct.Struct("<IH"))
    assert s.decode(s.encode((1, 2))) == (1, 2)


def test_codec_for_rejects_nonsense() -> None:
    for bad in (object(), True, 1.5, {"a": "u8"}):
        with pytest.raises(CodecError):
            codec_for(bad)
    with pytest.raises(CodecError, match="needs a size"):
        codec_for(bytes)


def test_lpm_keys() -> None:
    c = LpmKeyCodec(4)
    assert c.size == 8
    raw = c.encode("10.1.0.0/16")
    assert raw == struct.pack("=I", 16) + bytes([10, 1, 0, 0])
    assert c.decode(raw) == LpmKey(16, bytes([10, 1, 0, 0]))
    assert c.decode(c.encode("10.1.2.3")).prefixlen == 32
    assert str(c.decode(raw)) == "10.1.0.0/16"
    six = LpmKeyCodec(16)
    assert six.decode(six.encode("2001:db8::/32")) == lpm_key("2001:db8::/32")
    assert lpm_key(b"\x01\x02") == LpmKey(16, b"\x01\x02")
    with pytest.raises(CodecError):
        c.encode("2001:db8::/32")
    with pytest.raises(CodecError):
        c.encode((33, bytes(4)))
    with pytest.raises(CodecError):
        c.encode("not an ip")


def test_record_decoder() -> None:
    assert record_decoder(None) is None
    dec = record_decoder("u32")
    assert dec is not None and dec(struct.pack("=I", 9) + b"pad") == 9
    with pytest.raises(CodecError, match="too short"):
        dec(b"ab")
    s = record_decoder(struct.Struct("<HH"))
    assert s is not None and s(b"\x01\x00\x02\x00") == (1, 2)
    f = record_decoder(len)
    assert f is not None and f(b"abc") == 3
