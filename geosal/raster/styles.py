"""QGIS layer styles (``.qml``) for the exported COGs."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from geosal.raster.colormaps import colormap

_RAMP_STOPS = 11


def write_qml_pseudocolor(
    path: str | os.PathLike[str], band: int = 1, vmin: float = 0.0, vmax: float = 1.0, ramp: str = "magma"
) -> None:
    """Write a QGIS singleband-pseudocolor style for ``band`` to ``path``.

    Values from ``vmin`` to ``vmax`` are interpolated along the colormap
    ``ramp`` (one of :data:`geosal.raster.colormaps.COLORMAPS`, 11 stops); nodata stays transparent.
    """
    table = colormap(ramp)
    stops = [i / (_RAMP_STOPS - 1) for i in range(_RAMP_STOPS)]
    rgba = [(*(table[min(int(t * 256), 255)] / 255.0), 1.0) for t in stops]  # the entry matplotlib's colormap(t) picks
    colors = [_rgba(c) for c in rgba]
    renderer = ET.Element("rasterrenderer", {
        "type": "singlebandpseudocolor", "band": str(band), "opacity": "1", "alphaBand": "-1",
        "classificationMin": repr(float(vmin)), "classificationMax": repr(float(vmax)), "nodataColor": "",
    })
    ET.SubElement(renderer, "rasterTransparency")
    renderer.append(_min_max_origin())
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0",
        "minimumValue": repr(float(vmin)), "maximumValue": repr(float(vmax)), "labelPrecision": "2",
    })
    colorramp = ET.SubElement(shader, "colorramp", {"type": "gradient", "name": "[source]"})
    options = ET.SubElement(colorramp, "Option", {"type": "Map"})
    inner = ":".join(f"{t:g};{c}" for t, c in zip(stops[1:-1], colors[1:-1]))
    for key, value in (("color1", colors[0]), ("color2", colors[-1]), ("discrete", "0"),
                       ("rampType", "gradient"), ("stops", inner)):
        ET.SubElement(options, "Option", {"type": "QString", "name": key, "value": value})
    for t, (r, g, b, _) in zip(stops, rgba):
        value = vmin + t * (vmax - vmin)
        ET.SubElement(shader, "item", {
            "value": repr(float(value)), "label": f"{value:.2f}", "alpha": "255",
            "color": f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}",
        })
    _write(path, renderer)


def write_qml_rgba(path: str | os.PathLike[str]) -> None:
    """Write a QGIS multiband-color style to ``path``: red band 1, green 2, blue 3 (nodata is the file's
    mask), values shown as they are (0-255, no contrast stretch)."""
    renderer = ET.Element("rasterrenderer", {
        "type": "multibandcolor", "redBand": "1", "greenBand": "2", "blueBand": "3", "alphaBand": "-1",
        "opacity": "1", "nodataColor": "",
    })
    ET.SubElement(renderer, "rasterTransparency")
    renderer.append(_min_max_origin())
    for color in ("red", "green", "blue"):
        enhancement = ET.SubElement(renderer, f"{color}ContrastEnhancement")
        for tag, text in (("minValue", "0"), ("maxValue", "255"), ("algorithm", "NoEnhancement")):
            ET.SubElement(enhancement, tag).text = text
    _write(path, renderer)


def _rgba(color: tuple[float, float, float, float]) -> str:
    """QGIS ``"r,g,b,a"`` colour string from an RGBA tuple in [0, 1]."""
    return ",".join(str(round(c * 255)) for c in color)


def _min_max_origin() -> ET.Element:
    origin = ET.Element("minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(origin, tag).text = text
    return origin


def _write(path: str | os.PathLike[str], renderer: ET.Element) -> None:
    """Wrap ``renderer`` in a QGIS style document and write it."""
    root = ET.Element("qgis", {"version": "3.28.0", "styleCategories": "Symbology"})
    pipe = ET.SubElement(root, "pipe")
    pipe.append(renderer)
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0",
                                          "colorizeRed": "255", "colorizeGreen": "128", "colorizeBlue": "128",
                                          "colorizeStrength": "100", "invertColors": "0"})
    # interpolate when zoomed in: the layers lie on the grid of the finest saliency scale, coarser than the imagery
    ET.SubElement(pipe, "rasterresampler", {"zoomedInResampler": "bilinear", "zoomedOutResampler": "bilinear",
                                            "maxOversampling": "2"})
    ET.SubElement(pipe, "resamplingStage").text = "provider"
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
        stream.write(ET.tostring(root, encoding="unicode"))
        stream.write("\n")
