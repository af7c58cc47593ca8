"""Region geometry on the page: reading order and perspective crops of detected quadrilaterals.

numpy / OpenCV only (the Triton page model runs this file too).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

#: A crop at least this many times taller than wide is vertical text: it is turned 90° counter-clockwise.
TALL_RATIO = 1.5


def reading_order(quads: np.ndarray, line_overlap: float = 0.5) -> list[int]:
    """Indices of ``quads`` [N, 4, 2] top-to-bottom by line, left-to-right within a line.

    Regions are taken by their vertical centre; one joins the current line when its centre lies within
    ``line_overlap`` × (the line's median region height) of the line's mean centre.
    """
    quads = np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)
    if len(quads) == 0:
        return []
    cy = quads[:, :, 1].mean(1)
    cx = quads[:, :, 0].mean(1)
    heights = quads[:, :, 1].max(1) - quads[:, :, 1].min(1)
    lines: list[list[int]] = []
    for i in np.argsort(cy, kind="stable").tolist():
        if lines:
            line = lines[-1]
            tolerance = line_overlap * float(np.median(heights[line]))
            if abs(cy[i] - float(np.mean(cy[line]))) <= tolerance:
                line.append(i)
                continue
        lines.append([i])
    return [i for line in lines for i in sorted(line, key=lambda j: (cx[j], cy[j]))]


def crop_quad(rgb: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp the region ``quad`` (clockwise from top-left) of ``rgb`` [H, W, 3] to an upright rectangle.

    Returns the crop [h, w, 3] and the quad re-ordered so that its corners are the crop's top-left,
    top-right, bottom-right and bottom-left: for a tall region, turned 90° counter-clockwise, the crop's
    top-left corner is the quad's top-right one.
    """
    quad = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    width = max(1, int(round(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])))))
    height = max(1, int(round(max(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    crop = cv2.warpPerspective(rgb, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if height >= TALL_RATIO * width:
        return np.ascontiguousarray(np.rot90(crop)), quad[[1, 2, 3, 0]]
    return crop, quad


def ordered_crops(rgb: np.ndarray, quads: np.ndarray) -> tuple[list[int], list[np.ndarray], list[Image.Image]]:
    """The reading order of ``quads``, and in that order each quad in its crop's orientation and the crop."""
    order = reading_order(quads)
    oriented, crops = [], []
    for i in order:
        crop, quad = crop_quad(rgb, quads[i])
        crops.append(Image.fromarray(crop))
        oriented.append(quad)
    return order, oriented, crops


def sub_quad(quad: np.ndarray, u0: float, u1: float) -> np.ndarray:
    """The sub-quad of ``quad`` (crop-ordered) between fractions ``u0`` and ``u1`` of its width."""
    quad = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    top = [quad[0] + (quad[1] - quad[0]) * u for u in (u0, u1)]
    bottom = [quad[3] + (quad[2] - quad[3]) * u for u in (u0, u1)]
    return np.stack([top[0], top[1], bottom[1], bottom[0]]).astype(np.float32)
