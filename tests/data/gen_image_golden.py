"""Writes JPEG (and PNG) fixtures with PIL and PIL's own decoded pixels, for tests/data/image_corrupt_test.ts.

Run: /usr/bin/python3 tests/data/gen_image_golden.py  (PIL 9.4, libjpeg-turbo)
Output: tests/data/fixtures/pil_*.{jpg,png} and tests/data/image_golden.json
({name: {width, height, rgb: base64 of PIL's convert("RGB") bytes}}).
"""
import base64
import json
import os

from PIL import Image, __version__ as pil_version

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 37, 23  # not a multiple of the 16×16 MCU: exercises the edge blocks and upsampling


def picture():
    img = Image.new("RGB", (W, H))
    px = img.load()
    for y in range(H):
        for x in range(W):
            px[x, y] = ((x * 7 + y * 3) % 256, (x * x + 5 * y) % 256, (255 - 9 * y + x) % 256)
    return img


CASES = {
    "pil_420_q90": dict(quality=90, subsampling=2),
    "pil_444_q95": dict(quality=95, subsampling=0),
    "pil_progressive": dict(quality=85, subsampling=2, progressive=True),
    "pil_gray": dict(quality=90, gray=True),
}

out = {"_pil": pil_version}
for name, opts in CASES.items():
    img = picture()
    if opts.pop("gray", False):
        img = img.convert("L")
    path = os.path.join(HERE, "fixtures", name + ".jpg")
    img.save(path, "JPEG", **opts)
    dec = Image.open(path).convert("RGB")
    out[name] = {
        "width": dec.width,
        "height": dec.height,
        "rgb": base64.b64encode(dec.tobytes()).decode(),
    }
# PNG seeds for the fuzzer (tools/fuzz), with PIL's pixels too: a palette image with
# transparency and an RGBA one (PIL's convert("RGB") drops alpha without compositing).
for name, mode in (("pil_palette", "P"), ("pil_rgba", "RGBA")):
    img = picture()
    if mode == "P":
        img = img.quantize(colors=16)
        img.info["transparency"] = 3
    else:
        img.putalpha(Image.linear_gradient("L").resize((W, H)))
    path = os.path.join(HERE, "fixtures", name + ".png")
    img.save(path, "PNG")
    dec = Image.open(path).convert("RGB")
    out[name] = {
        "width": dec.width,
        "height": dec.height,
        "rgb": base64.b64encode(dec.tobytes()).decode(),
    }
with open(os.path.join(HERE, "image_golden.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", list(CASES))
