"""Tests of psic.imageio: input kinds, mode conversions, limits, padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psic import imageio
from psic.errors import InputImageError, PsicIOError


def gradient(height: int = 12, width: int = 20) -> np.ndarray:
    """A deterministic RGB test image with distinct values per pixel and channel."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows * 20 % 256, cols * 12 % 256, (rows * 7 + cols * 3) % 256], axis=2).astype(np.uint8)


def check_rgb(rgb: np.ndarray, height: int, width: int) -> None:
    assert rgb.dtype == np.uint8
    assert rgb.shape == (height, width, 3)
    assert rgb.flags.c_contiguous
    assert rgb.flags.writeable


def save(tmp_path: Path, image: Image.Image, name: str, **params: object) -> Path:
    path = tmp_path / name
    image.save(path, **params)
    return path


# --- input kinds ------------------------------------------------------------------------


def test_png_path_as_str_and_pathlike(tmp_path: Path) -> None:
    original = gradient()
    path = save(tmp_path, Image.fromarray(original), "in.png")
    for given in (path, str(path)):
        rgb, mode = imageio.load_image(given)
        check_rgb(rgb, 12, 20)
        assert mode == "RGB"
        np.testing.assert_array_equal(rgb, original)


def test_jpeg_path(tmp_path: Path) -> None:
    original = np.full((16, 24, 3), (200, 100, 50), np.uint8)
    rgb, mode = imageio.load_image(save(tmp_path, Image.fromarray(original), "in.jpg", quality=95))
    check_rgb(rgb, 16, 24)
    assert mode == "RGB"
    assert np.abs(rgb.astype(int) - original).max() <= 3


def test_pil_image(tmp_path: Path) -> None:
    original = gradient()
    image = Image.fromarray(original)
    rgb, mode = imageio.load_image(image)
    check_rgb(rgb, 12, 20)
    assert mode == "RGB"
    np.testing.assert_array_equal(rgb, original)
    rgb[0, 0] = 0
    assert image.getpixel((0, 0)) == tuple(original[0, 0])


def test_lazily_opened_pil_image(tmp_path: Path) -> None:
    path = save(tmp_path, Image.fromarray(gradient()), "in.png")
    with Image.open(path) as image:
        rgb, _ = imageio.load_image(image)
    np.testing.assert_array_equal(rgb, gradient())


def test_numpy_rgb_is_copied() -> None:
    original = gradient()
    rgb, mode = imageio.load_image(original)
    check_rgb(rgb, 12, 20)
    assert mode == "RGB"
    np.testing.assert_array_equal(rgb, original)
    assert not np.shares_memory(rgb, original)


def test_numpy_grey() -> None:
    grey = gradient()[:, :, 0]
    rgb, mode = imageio.load_image(grey)
    check_rgb(rgb, 12, 20)
    assert mode == "L"
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], grey)


def test_numpy_rgba() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    rgba[0, 1] = (10, 20, 30, 0)
    rgb, mode = imageio.load_image(rgba)
    check_rgb(rgb, 2, 2)
    assert mode == "RGBA"
    assert tuple(rgb[0, 0]) == (10, 20, 30)
    assert tuple(rgb[0, 1]) == (255, 255, 255)


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[:, ::-1],
        lambda a: a[::2, 1::3],
        lambda a: np.asfortranarray(a),
        lambda a: a.transpose(1, 0, 2),
        lambda a: a[:, :, ::-1],
    ],
)
def test_non_contiguous_arrays(view) -> None:
    array = view(gradient())
    assert not array.flags.c_contiguous
    rgb, _ = imageio.load_image(array)
    check_rgb(rgb, *array.shape[:2])
    np.testing.assert_array_equal(rgb, array)


def test_non_contiguous_grey_and_rgba() -> None:
    grey = gradient()[:, :, 1][::-1, ::2]
    rgb, _ = imageio.load_image(grey)
    np.testing.assert_array_equal(rgb[:, :, 2], grey)
    rgba = np.dstack([gradient(), np.full((12, 20), 255, np.uint8)])[:, ::-1]
    rgb, _ = imageio.load_image(rgba)
    np.testing.assert_array_equal(rgb, rgba[:, :, :3])


# --- EXIF orientation ---------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 40 wide, 20 high: left half red, right half blue. Orientation 6 means "rotate 90
    # degrees clockwise to display", which brings the left half to the top.
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = (255, 0, 0)
    array[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path, Image.fromarray(array), "rotated.jpg", exif=exif, quality=95)
    rgb, mode = imageio.load_image(path)
    check_rgb(rgb, 40, 20)
    assert mode == "RGB"
    assert rgb[5, 10, 0] > 200 and rgb[5, 10, 2] < 50  # top is red
    assert rgb[35, 10, 2] > 200 and rgb[35, 10, 0] < 50  # bottom is blue


# --- mode conversions ---------------------------------------------------------------------


def test_grey_png(tmp_path: Path) -> None:
    grey = gradient()[:, :, 2]
    rgb, mode = imageio.load_image(save(tmp_path, Image.fromarray(grey, "L"), "grey.png"))
    assert mode == "L"
    check_rgb(rgb, 12, 20)
    np.testing.assert_array_equal(rgb, np.dstack([grey] * 3))


def palette_image() -> Image.Image:
    image = Image.new("P", (3, 1))
    image.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90])
    for x in range(3):
        image.putpixel((x, 0), x)
    return image


def test_palette(tmp_path: Path) -> None:
    rgb, mode = imageio.load_image(save(tmp_path, palette_image(), "palette.png"))
    assert mode == "P"
    check_rgb(rgb, 1, 3)
    assert rgb[0].tolist() == [[10, 20, 30], [40, 50, 60], [70, 80, 90]]


def test_palette_with_transparency(tmp_path: Path) -> None:
    rgb, mode = imageio.load_image(save(tmp_path, palette_image(), "palette.png", transparency=1))
    assert mode == "P"
    assert rgb[0].tolist() == [[10, 20, 30], [255, 255, 255], [70, 80, 90]]


def test_grey_with_transparency_key(tmp_path: Path) -> None:
    grey = np.array([[0, 7, 200]], np.uint8)
    rgb, mode = imageio.load_image(save(tmp_path, Image.fromarray(grey, "L"), "key.png", transparency=7))
    assert mode == "L"
    assert rgb[0].tolist() == [[0, 0, 0], [255, 255, 255], [200, 200, 200]]


def test_rgba_png_over_white(tmp_path: Path) -> None:
    rgba = np.array([[[10, 20, 30, 255], [10, 20, 30, 0], [0, 0, 0, 128]]], np.uint8)
    rgb, mode = imageio.load_image(save(tmp_path, Image.fromarray(rgba, "RGBA"), "alpha.png"))
    assert mode == "RGBA"
    assert rgb[0].tolist() == [[10, 20, 30], [255, 255, 255], [127, 127, 127]]


def test_over_white_rounds_exactly_for_every_colour_and_alpha() -> None:
    colour, alpha = np.mgrid[0:256, 0:256]
    rgba = np.stack([colour, colour, colour, alpha], axis=2).astype(np.uint8)
    rgb, _ = imageio.load_image(rgba)
    expected = np.round((colour * alpha + 255 * (255 - alpha)) / 255).astype(np.uint8)
    np.testing.assert_array_equal(rgb[:, :, 0], expected)


def test_la_and_premultiplied_modes() -> None:
    rgb, mode = imageio.load_image(Image.new("LA", (2, 1), (50, 0)))
    assert mode == "LA" and rgb.tolist() == [[[255] * 3] * 2]
    rgb, mode = imageio.load_image(Image.new("La", (2, 1), (50, 255)))
    assert mode == "La" and rgb.tolist() == [[[50] * 3] * 2]
    rgb, mode = imageio.load_image(Image.new("RGBa", (2, 1), (10, 20, 30, 255)))
    assert mode == "RGBa" and rgb.tolist() == [[[10, 20, 30]] * 2]
    rgb, mode = imageio.load_image(Image.new("PA", (1, 1), (0, 0)))
    assert mode == "PA" and rgb.tolist() == [[[255] * 3]]


def test_sixteen_bit_png(tmp_path: Path) -> None:
    values = np.array([[0, 128, 129, 257, 257 * 100, 257 * 254, 65534, 65535]], np.uint16)
    path = save(tmp_path, Image.fromarray(values), "deep.png")
    rgb, mode = imageio.load_image(path)
    assert mode.startswith("I")
    check_rgb(rgb, 1, 8)
    assert rgb[0, :, 0].tolist() == [0, 0, 1, 1, 100, 254, 255, 255]
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 2])


def test_sixteen_bit_every_multiple_of_257() -> None:
    values = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    rgb, _ = imageio.load_image(Image.fromarray(values))
    np.testing.assert_array_equal(rgb[:, :, 1], np.arange(256).reshape(16, 16))


def test_thirty_two_bit_integer_is_clipped_then_scaled() -> None:
    image = Image.fromarray(np.array([[-5, 0, 257 * 3, 65535, 70000]], np.int32), "I")
    rgb, mode = imageio.load_image(image)
    assert mode == "I"
    assert rgb[0, :, 0].tolist() == [0, 0, 3, 255, 255]


def test_float_is_clipped_and_rounded() -> None:
    image = Image.fromarray(np.array([[-3.2, 1.4, 1.6, 254.6, 300.0, np.nan]], np.float32), "F")
    rgb, mode = imageio.load_image(image)
    assert mode == "F"
    assert rgb[0, :, 0].tolist() == [0, 1, 2, 255, 255, 0]


@pytest.mark.parametrize(
    "mode, value, expected",
    [
        ("1", 1, (255, 255, 255)),
        ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
        ("YCbCr", (128, 128, 128), (128, 128, 128)),
        ("HSV", (0, 255, 255), (255, 0, 0)),
        ("RGBX", (1, 2, 3, 0), (1, 2, 3)),
        ("LAB", (255, 128, 128), None),
    ],
)
def test_other_modes_convert_to_rgb(mode: str, value: object, expected: tuple[int, int, int] | None) -> None:
    rgb, source_mode = imageio.load_image(Image.new(mode, (3, 2), value))
    assert source_mode == mode
    check_rgb(rgb, 2, 3)
    if expected is not None:
        assert tuple(rgb[1, 2]) == expected


# --- limits and bad input -------------------------------------------------------------------


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path, Image.fromarray(gradient(20, 20)), "bomb.png")
    decoded = []
    original_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1) or original_load(self))
    monkeypatch.setattr(imageio, "MAX_PIXELS", 399)
    with pytest.raises(InputImageError, match="decompression"):
        imageio.load_image(path)
    assert not decoded
    monkeypatch.setattr(imageio, "MAX_PIXELS", 400)
    imageio.load_image(path)
    assert decoded


def test_side_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "MAX_SIDE", 15)
    with pytest.raises(InputImageError, match="at most 15"):
        imageio.load_image(save(tmp_path, Image.fromarray(gradient(10, 16)), "wide.png"))
    with pytest.raises(InputImageError):
        imageio.load_image(gradient(16, 10))
    imageio.load_image(gradient(15, 15))


@pytest.mark.parametrize("pillow_limit", [50, 10])  # 64 pixels: Pillow's warning, then its error
def test_pillow_decompression_bomb_check_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pillow_limit: int
) -> None:
    path = save(tmp_path, Image.fromarray(gradient(8, 8)), "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with pytest.raises(InputImageError):
        imageio.load_image(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(range(256))],
)
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputImageError):
        imageio.load_image(path)


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_truncated_file(tmp_path: Path, name: str) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = save(tmp_path, Image.fromarray(noise), name)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputImageError):
        imageio.load_image(path)
    with Image.open(path) as lazy, pytest.raises(InputImageError):
        imageio.load_image(lazy)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PsicIOError, match="absent.png"):
        imageio.load_image(tmp_path / "absent.png")
    with pytest.raises(PsicIOError):
        imageio.load_image(tmp_path)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int8, np.bool_])
def test_wrong_dtype(dtype: type) -> None:
    with pytest.raises(InputImageError, match=np.dtype(dtype).name):
        imageio.load_image(np.zeros((4, 4, 3), dtype))


@pytest.mark.parametrize("shape", [(4,), (4, 4, 1), (4, 4, 2), (4, 4, 5), (2, 4, 4, 3), (0, 4, 3), (4, 0)])
def test_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputImageError) as info:
        imageio.load_image(np.zeros(shape, np.uint8))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [None, 3, [[0, 0, 0]]])
def test_wrong_type(value: object) -> None:
    with pytest.raises(InputImageError, match="expected a path"):
        imageio.load_image(value)  # type: ignore[arg-type]


# --- padding, cropping, output --------------------------------------------------------------


def test_padding_replicates_edges_and_crop_restores() -> None:
    original = gradient(5, 7)
    padded = imageio.pad_to_multiple(original, 4)
    assert padded.shape == (8, 8, 3)
    np.testing.assert_array_equal(padded[:5, :7], original)
    np.testing.assert_array_equal(padded[5:, :7], np.broadcast_to(original[4], (3, 7, 3)))
    np.testing.assert_array_equal(padded[:5, 7], original[:, 6])
    np.testing.assert_array_equal(padded[5:, 7:], np.broadcast_to(original[4, 6], (3, 1, 3)))
    restored = imageio.crop(padded, 5, 7)
    assert restored.flags.c_contiguous
    np.testing.assert_array_equal(restored, original)


def test_padding_is_a_no_op_when_aligned() -> None:
    original = gradient(8, 16)
    assert imageio.pad_to_multiple(original, 8) is original
    assert imageio.pad_to_multiple(original, 1) is original


def test_padding_one_axis_only() -> None:
    assert imageio.pad_to_multiple(gradient(8, 9), 8).shape == (8, 16, 3)
    assert imageio.pad_to_multiple(gradient(9, 8), 8).shape == (16, 8, 3)


def test_padding_and_crop_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError):
        imageio.pad_to_multiple(gradient(), 0)
    with pytest.raises(ValueError):
        imageio.crop(gradient(4, 4), 5, 4)
    with pytest.raises(ValueError):
        imageio.crop(gradient(4, 4), 4, 0)


def test_to_pil_round_trip() -> None:
    original = gradient()
    image = imageio.to_pil(original[:, ::-1])
    assert image.mode == "RGB" and image.size == (20, 12)
    np.testing.assert_array_equal(np.asarray(image), original[:, ::-1])


@pytest.mark.parametrize("array", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3))])
def test_to_pil_refuses_other_layouts(array: np.ndarray) -> None:
    with pytest.raises(InputImageError):
        imageio.to_pil(array)
