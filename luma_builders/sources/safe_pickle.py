"""Loading pickles without running any of their code.

A pickle calls the globals it names with arguments it chooses. An allow-list of globals alone is not
enough: pandas' and numpy's own constructors trust those arguments (a BlockManager placement out of range
makes pandas write past the end of an array; numpy's dtype `__setstate__` accepts the object flag on a
1-byte string type). So the unpickler here resolves each allowed global to an inert stand-in that only
records what the pickle asked of it, refuses every other global, and `loads` then rebuilds plain values
(numpy arrays, strings, lists, dicts, DataFrames) from that record through public constructors, after
checking every piece.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa


@dataclass(frozen=True)
class AllowList:
    """The globals one kind of pickle may name, each mapped to the stand-in that records it."""

    globals: dict[tuple[str, str], str]
    holds: str  # what such pickles hold, for the error message


# The globals below were measured (pickletools GLOBAL / STACK_GLOBAL opcodes) on pickles written at
# protocols 2-5 by pandas 1.5.3 + numpy 1.26.4, pandas 2.0.3 + numpy 1.26.4, pandas 2.2.3 + numpy 1.26.4,
# pandas 2.3.3 + numpy 2.4.6 and pandas 3.1.1 + numpy 2.4.6 (Python 3.11).
_NUMPY_ARRAYS = {
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",  # numpy 1
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",  # numpy 2
    ("_codecs", "encode"): "latin1",  # how Python 3 writes bytes at protocol 2
}
CIFAR = AllowList(_NUMPY_ARRAYS, "CIFAR pickles hold only dicts, lists, strings and numpy arrays")
# A DataFrame with an object column of uint8 arrays and a string column, with a RangeIndex or an Index.
EDM = AllowList(
    {
        **_NUMPY_ARRAYS,
        ("numpy.core.numeric", "_frombuffer"): "frombuffer",  # protocol 5, numpy 1
        ("numpy._core.numeric", "_frombuffer"): "frombuffer",  # protocol 5, numpy 2
        ("__builtin__", "slice"): "slice",  # protocol 2 writes Python 2 names
        ("builtins", "slice"): "slice",
        ("__builtin__", "bytearray"): "bytearray",
        ("builtins", "bytearray"): "bytearray",
        ("pandas.core.frame", "DataFrame"): "DataFrame",  # pandas < 3
        ("pandas", "DataFrame"): "DataFrame",  # pandas 3
        ("pandas.core.internals.managers", "BlockManager"): "BlockManager",
        ("pandas._libs.internals", "_unpickle_block"): "block",
        ("pandas.core.indexes.base", "_new_Index"): "new_index",
        ("pandas.core.indexes.base", "Index"): "Index",
        ("pandas", "Index"): "Index",
        ("pandas.core.indexes.numeric", "Int64Index"): "Index",  # pandas 1
        ("pandas.core.indexes.range", "RangeIndex"): "RangeIndex",
        ("pandas", "RangeIndex"): "RangeIndex",
        # pandas 3 keeps strings (the `label` column, the column names) in Arrow arrays
        ("pandas", "StringDtype"): "StringDtype",
        ("pandas.arrays", "ArrowStringArray"): "ArrowStringArray",
        ("pyarrow.lib", "_restore_array"): "arrow_array",
        ("pyarrow.lib", "type_for_alias"): "arrow_type",
        ("pyarrow.lib", "py_buffer"): "arrow_buffer",
    },
    "LUMA pickles hold only a DataFrame of arrays and strings",
)


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global that its allow-list does not hold."""

    def __init__(self, module: str, name: str):
        # named as Python 3 would import it: protocol 2 writes Python 2 names (`__builtin__.eval`)
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        self.qualname = f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"
        super().__init__(f"{self.qualname} is not allowed")


class _StandIn:
    """What a pickle asked of an allowed global: arguments and state, recorded; nothing runs."""

    kind = ""

    def __new__(cls, *args, **kwargs):
        stand_in = super().__new__(cls)
        stand_in.args, stand_in.kwargs, stand_in.state = args, kwargs, None
        return stand_in

    def __init__(self, *args, **kwargs):
        pass  # __new__ recorded the arguments

    def __setstate__(self, state):
        self.state = state


class _StandInUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, allowed: AllowList):
        # latin1: Python 2 `str` holds bytes (CIFAR); Python 3 pickles have no Python 2 strings
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.allowed = allowed

    def find_class(self, module, name):
        kind = self.allowed.globals.get((module, name))
        if kind is None:
            raise RefusedGlobal(module, name)
        return _STAND_INS[kind]


def loads(data: bytes, allowed: AllowList):
    """The object pickled in `data`, rebuilt from plain values.

    Raises RefusedGlobal for a global not in `allowed`, and UnpicklingError (or whatever a corrupt pickle
    raises) for content that is not one of the structures rebuilt here.
    """
    return _Rebuild()(_StandInUnpickler(data, allowed).load())


# --------------------------------------------------------------------------- rebuilding


def _expect(condition, what: str) -> None:
    if not condition:
        raise pickle.UnpicklingError(f"unexpected {what}")


def _is_class(obj, kind: str) -> bool:
    return isinstance(obj, type) and issubclass(obj, _StandIn) and obj.kind == kind


def _is_instance(obj, kind: str) -> bool:
    return isinstance(obj, _StandIn) and obj.kind == kind


_PLAIN = (str, bytes, bytearray, int, float, complex, type(None))


class _Rebuild:
    """Turns a record of stand-ins, lists, tuples, dicts and plain values into the values it describes."""

    def __init__(self):
        self.done = {}  # id -> (record, value): records shared in the pickle are rebuilt once

    def __call__(self, record):
        if id(record) not in self.done:
            self.done[id(record)] = (record, self._build(record))
        return self.done[id(record)][1]

    def _build(self, record):
        if isinstance(record, _StandIn):
            _expect(record.kind in _BUILDERS, f"{record.kind} here")
            return _BUILDERS[record.kind](record, self)
        if type(record) in (list, tuple):
            return type(record)(self(item) for item in record)
        if type(record) is dict:
            return {self(key): self(value) for key, value in record.items()}
        _expect(isinstance(record, _PLAIN), f"{type(record).__name__}")
        return record


def _dtype(record, rebuild) -> np.dtype:
    code = record.args[0] if record.args else None
    _expect(isinstance(code, str), "dtype arguments")
    dtype = np.dtype(code)
    _expect(dtype.kind in "biufcOSU" and dtype.fields is None and dtype.subdtype is None, f"dtype {code!r}")
    # Of the pickled dtype state only the byte order is the file's to say; the rest follows from the code.
    order = record.state[1] if isinstance(record.state, tuple) and len(record.state) > 1 else "|"
    _expect(order in ("<", ">", "=", "|"), f"byte order {order!r}")
    return dtype.newbyteorder(order)


def _array(shape, dtype, fortran, content, rebuild) -> np.ndarray:
    dtype = rebuild(dtype)
    _expect(isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape), "array shape")
    _expect(isinstance(dtype, np.dtype) and type(fortran) is bool, "array layout")
    count = math.prod(shape)
    if dtype.hasobject:
        cells = rebuild(content)
        _expect(type(cells) is list and len(cells) == count, "object array content")
        flat = np.empty(count, dtype=object)
        for i, cell in enumerate(cells):
            flat[i] = cell
    else:
        raw = content.encode("latin1") if isinstance(content, str) else rebuild(content)  # Python 2 bytes
        _expect(isinstance(raw, (bytes, bytearray)) and len(raw) == count * dtype.itemsize, "array data size")
        flat = np.frombuffer(raw, dtype=dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


def _reconstruct(record, rebuild) -> np.ndarray:
    _expect(len(record.args) == 3 and _is_class(record.args[0], "ndarray"), "array arguments")
    _expect(isinstance(record.state, tuple) and len(record.state) in (4, 5), "array state")
    shape, dtype, fortran, content = record.state[-4:]  # after the state's version, when it has one
    return _array(shape, dtype, fortran, content, rebuild)


def _frombuffer(record, rebuild) -> np.ndarray:
    _expect(len(record.args) == 4 and record.args[3] in ("C", "F"), "array buffer arguments")
    content, dtype, shape, order = record.args
    return _array(shape, dtype, order == "F", content, rebuild)


def _latin1(record, rebuild) -> bytes:
    text, encoding = record.args if len(record.args) == 2 else (None, None)
    _expect(isinstance(text, str) and encoding in ("latin1", "latin-1"), "_codecs.encode arguments")
    return text.encode("latin1")


def _slice(record, rebuild) -> slice:
    _expect(1 <= len(record.args) <= 3 and all(a is None or type(a) is int for a in record.args), "slice")
    return slice(*record.args)


def _bytearray(record, rebuild) -> bytearray:
    content = [rebuild(arg) for arg in record.args]
    _expect(len(content) <= 1 and all(isinstance(c, (bytes, bytearray)) for c in content), "bytearray")
    return bytearray(*content)


# --------------------------------------------------------------------------- pandas 3 strings (Arrow)


def _arrow_type(record, rebuild) -> pa.DataType:
    alias = record.args[0] if len(record.args) == 1 else None
    _expect(alias in ("string", "large_string"), f"Arrow type {alias!r}")
    return pa.string() if alias == "string" else pa.large_string()


def _arrow_buffer(record, rebuild) -> pa.Buffer:
    content = rebuild(record.args[0]) if len(record.args) == 1 else None
    _expect(isinstance(content, (bytes, bytearray)), "Arrow buffer")
    return pa.py_buffer(bytes(content))


def _arrow_strings(record, rebuild) -> list:
    """pyarrow's own `_restore_array` trusts the offsets it is given: check the whole array instead."""
    _expect(len(record.args) == 1 and type(record.args[0]) is tuple and len(record.args[0]) == 7, "Arrow array")
    arrow_type, length, null_count, offset, buffers, children, dictionary = rebuild(record.args[0])
    _expect(isinstance(arrow_type, pa.DataType), "Arrow array type")
    _expect(all(type(n) is int and n >= -1 for n in (length, null_count, offset)), "Arrow array sizes")
    _expect(type(buffers) is list and all(b is None or isinstance(b, pa.Buffer) for b in buffers), "Arrow buffers")
    _expect(children == [] and dictionary is None, "nested Arrow array")
    array = pa.Array.from_buffers(arrow_type, length, buffers, null_count, offset)
    array.validate(full=True)
    return array.to_pylist()


def _arrow_string_array(record, rebuild) -> list:
    state = record.state
    _expect(type(state) is dict and _is_instance(state.get("_pa_array"), "arrow_array"), "ArrowStringArray state")
    return rebuild(state["_pa_array"])


# --------------------------------------------------------------------------- pandas DataFrame


def _new_index(record, rebuild) -> pd.Index:
    _expect(len(record.args) == 2 and type(record.args[1]) is dict, "Index arguments")
    cls, fields = record.args[0], rebuild(record.args[1])
    name = fields.get("name")
    _expect(name is None or isinstance(name, (str, int)), "Index name")
    if _is_class(cls, "RangeIndex"):
        bounds = [fields.get(key) for key in ("start", "stop", "step")]
        _expect(all(type(b) is int for b in bounds) and bounds[2] != 0, "RangeIndex bounds")
        return pd.RangeIndex(*bounds, name=name)
    data = fields.get("data")
    _expect(_is_class(cls, "Index") and _is_column(data), "Index")
    return pd.Index(data, dtype=getattr(data, "dtype", None), name=name)


def _is_column(values) -> bool:
    """A 1-d numpy array, or the strings of an Arrow array."""
    return (isinstance(values, np.ndarray) and values.ndim == 1) or type(values) is list


def _block(record, rebuild) -> list[tuple[int, object]]:
    """(column position, values) for each column of a block."""
    _expect(len(record.args) == 3 and type(record.args[2]) is int and record.args[2] == 2, "block arguments")
    values, placement = rebuild(record.args[0]), rebuild(record.args[1])
    columns = list(values) if isinstance(values, np.ndarray) and values.ndim == 2 else [values]
    if isinstance(placement, slice):
        _expect(placement.stop is not None and placement.step != 0, "block placement")
        positions = range(placement.start or 0, placement.stop, placement.step or 1)
    else:
        _expect(isinstance(placement, np.ndarray) and placement.ndim == 1 and placement.dtype.kind in "iu", "placement")
        positions = placement.tolist()
    _expect(len(positions) == len(columns) and all(_is_column(c) for c in columns), "block shape")
    return list(zip(positions, columns, strict=True))


def _block_manager(record, rebuild) -> tuple[pd.Index, pd.Index, dict]:
    """(column names, row index, values by column position)."""
    _expect(len(record.args) == 2 and type(record.args[0]) is tuple, "BlockManager arguments")
    _expect(all(_is_instance(block, "block") for block in record.args[0]), "BlockManager blocks")
    pairs = [pair for block in rebuild(record.args[0]) for pair in block]
    axes = rebuild(record.args[1])
    _expect(type(axes) is list and len(axes) == 2 and all(isinstance(a, pd.Index) for a in axes), "DataFrame axes")
    columns, rows = axes
    _expect(sorted(position for position, _ in pairs) == list(range(len(columns))), "block placements")
    _expect(all(len(values) == len(rows) for _, values in pairs), "column length")
    return columns, rows, dict(pairs)


def _data_frame(record, rebuild) -> pd.DataFrame:
    state = record.state
    _expect(type(state) is dict and _is_instance(state.get("_mgr"), "BlockManager"), "DataFrame state")
    columns, rows, values = rebuild(state["_mgr"])
    frame = pd.DataFrame(
        {
            position: pd.Series(column, index=rows, dtype=getattr(column, "dtype", None), copy=False)
            for position, column in sorted(values.items())
        },
        index=rows,
    )
    frame.columns = columns
    return frame


_BUILDERS = {
    "dtype": _dtype,
    "reconstruct": _reconstruct,
    "frombuffer": _frombuffer,
    "latin1": _latin1,
    "slice": _slice,
    "bytearray": _bytearray,
    "arrow_type": _arrow_type,
    "arrow_buffer": _arrow_buffer,
    "arrow_array": _arrow_strings,
    "ArrowStringArray": _arrow_string_array,
    "new_index": _new_index,
    "block": _block,
    "BlockManager": _block_manager,
    "DataFrame": _data_frame,
}
# ndarray, Index, RangeIndex and StringDtype are only ever arguments of the others: they build nothing.
_STAND_INS = {
    kind: type(f"_{kind}StandIn", (_StandIn,), {"kind": kind})
    for kind in {*CIFAR.globals.values(), *EDM.globals.values()}
}
