"""Detector geometry: where a point lies (plane, view, cell), box edges and readout distances.

Coordinates in cm. The beam runs along +z and plane 0 starts at z = 0. x is horizontal
and y points up, both centred on the detector axis. Even planes hold vertical cells (XZ
view, view 0): the cell number measures x, and light is read out at the top, y = +width/2.
Odd planes hold horizontal cells (YZ view, view 1): the cell number measures y, and light
is read out at the side x = +width/2.
"""

from __future__ import annotations

import numpy as np

from jetnu.sim.neutrino.config import DetectorConfig

XZ_VIEW = 0
YZ_VIEW = 1


def locate(points: np.ndarray, config: DetectorConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Map points of shape (n, 3) to (plane, view, cell, inside). Plane and cell are valid only where inside."""
    half = config.width_cm / 2
    x, y, z = points[:, 0], points[:, 1], points[:, 2]

    plane = np.floor(z / config.plane_depth_cm).astype(np.int64)
    view = plane & 1  # even planes XZ (view 0), odd planes YZ (view 1), negative planes included
    across = np.where(view == XZ_VIEW, x, y)
    cell = np.floor((across + half) / config.cell_width_cm).astype(np.int64)

    inside = (
        (plane >= 0)
        & (plane < config.n_planes)
        & (np.abs(x) < half)
        & (np.abs(y) < half)
        & (cell >= 0)
        & (cell < config.n_cells)
    )
    return plane, view, cell, inside


def readout_distance_cm(points: np.ndarray, view: np.ndarray, config: DetectorConfig) -> np.ndarray:
    """Return the distance from each point to the readout end of its cell along the cell, cm."""
    half = config.width_cm / 2
    along = np.where(view == XZ_VIEW, points[:, 1], points[:, 0])
    return np.clip(half - along, 0.0, config.width_cm)


def contains(point: np.ndarray, config: DetectorConfig) -> bool:
    """Return whether one point (3,) lies inside the active volume."""
    half = config.width_cm / 2
    return bool(abs(point[0]) < half and abs(point[1]) < half and 0 <= point[2] < config.length_cm)


def distance_to_exit_cm(point: np.ndarray, direction: np.ndarray, config: DetectorConfig) -> float:
    """Return the path length from `point` along the unit vector `direction` to the detector's surface, cm.

    Returns 0 for a point outside the detector that moves away from it, and the distance
    to the far wall for one that will enter it.
    """
    half = config.width_cm / 2
    low = np.array([-half, -half, 0.0])
    high = np.array([half, half, config.length_cm])

    # Slab method: the exit is the nearest far-side crossing over the three axes.
    with np.errstate(divide="ignore", invalid="ignore"):
        to_low = (low - point) / direction
        to_high = (high - point) / direction
    far = np.where(direction != 0, np.maximum(to_low, to_high), np.inf)
    return float(max(np.min(far), 0.0))


def sample_vertex(rng: np.random.Generator, config: DetectorConfig) -> np.ndarray:
    """Draw a point uniformly inside the fiducial volume, cm, shape (3,)."""
    (x_low, x_high), (y_low, y_high), (z_low, z_high) = config.fiducial_bounds_cm
    return np.array([rng.uniform(x_low, x_high), rng.uniform(y_low, y_high), rng.uniform(z_low, z_high)])
