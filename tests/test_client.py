"""The serial client's model check: a board that is not ready is one line saying why."""
import pytest
from esptiny.crc import crc32
from esptiny.errors import UserError
from esptiny.link import protocol as P
from esptiny.link.client import Session, Settings

MODEL = b"a model's bytes"
IN = {"dtype": "int8", "shape": [1, 28, 28, 1]}
OUT = {"dtype": "int8", "shape": [1, 10]}


def _board(status: int, detail: str = "") -> Session:
    s = Session("loop://", "board", Settings(reset=False))
    s.info = P.Info(model_crc32=crc32(MODEL), model_bytes=len(MODEL), arena_bytes=15360,
                    arena_used_bytes=0, cpu_mhz=240, max_payload=4096, rx_buffer_bytes=8214,
                    input=P.TensorInfo(P.DTYPE_CODES["int8"], (1, 28, 28, 1), 1 / 255, -128),
                    output=P.TensorInfo(P.DTYPE_CODES["int8"], (1, 10), 0.1, 0),
                    chip="esp32", firmware_version="esptiny-fw 0.1.0", status=status, detail=detail)
    return s


@pytest.mark.parametrize("status,detail,why", [
    (3, "RESHAPE (op 3) not registered", "op not registered: RESHAPE (op 3) not registered"),
    (1, "at least 3280 B short in the memory plan",
     "arena too small: at least 3280 B short in the memory plan"),
    (4, "CONV_2D (op 0) Prepare failed", "op prepare failed: CONV_2D (op 0) Prepare failed"),
    (1, "", "arena too small"),  # a firmware without details
    (9, "", "status 9"),
])
def test_not_ready_says_why_in_one_line(status, detail, why):
    # The detail travels through INFO's bytes, as from a board.
    s = _board(status, detail)
    s.info = P.Info.unpack(s.info.pack())
    with pytest.raises(UserError) as e:
        s.check("int8", MODEL, IN, OUT)
    assert str(e.value) == f"board is not ready: {why} (arena 15360 bytes)"


def test_ready_board_passes():
    _board(P.STATUS_READY).check("int8", MODEL, IN, OUT)
