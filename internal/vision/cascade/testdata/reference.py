#!/usr/bin/python3
"""Compute OpenCV's detectMultiScale boxes for the accuracy test.

Run with Debian's /usr/bin/python3 (python3-opencv):

    /usr/bin/python3 reference.py [OUT.json]

It writes reference.json beside itself by default. The Go test
(TestAccuracyAgainstOpenCV) compares the cascade package's boxes with these,
and re-runs this script into a temporary file when cv2 is importable.

Images are read the way the Go side reads them: JPEGs as grayscale (the
decoder's luma plane), PNGs in colour then converted with COLOR_BGR2GRAY.
"""

import json
import os
import sys

import cv2

HERE = os.path.dirname(os.path.abspath(__file__))
CASCADES = {
    "haar": os.path.join(HERE, "..", "data", "haarcascade_frontalface_default.xml"),
    "lbp": os.path.join(HERE, "..", "data", "lbpcascade_frontalface.xml"),
}
IMAGES = ["astronaut.png", "camera.png", "facemark_example.jpg", "messi5.jpg"]
# Parameter sets: scaleFactor, minNeighbors, minSize, maxSize ([0, 0] = none).
PARAMS = [
    {"scaleFactor": 1.1, "minNeighbors": 3, "minSize": [0, 0], "maxSize": [0, 0]},
    {"scaleFactor": 1.2, "minNeighbors": 5, "minSize": [0, 0], "maxSize": [0, 0]},
    {"scaleFactor": 1.05, "minNeighbors": 4, "minSize": [40, 40], "maxSize": [0, 0]},
    {"scaleFactor": 1.3, "minNeighbors": 2, "minSize": [0, 0], "maxSize": [200, 200]},
    {"scaleFactor": 1.1, "minNeighbors": 0, "minSize": [0, 0], "maxSize": [0, 0]},
]


def gray(path):
    if path.endswith(".jpg"):
        return cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "reference.json")
    cv2.setNumThreads(1)
    cases, groups = [], []
    for name, path in CASCADES.items():
        clf = cv2.CascadeClassifier(path)
        if clf.empty():
            sys.exit("cannot load " + path)
        for image in IMAGES:
            g = gray(os.path.join(HERE, image))
            for p in PARAMS:
                boxes = clf.detectMultiScale(
                    g,
                    scaleFactor=p["scaleFactor"],
                    minNeighbors=p["minNeighbors"],
                    minSize=tuple(p["minSize"]),
                    maxSize=tuple(p["maxSize"]),
                )
                boxes = sorted([int(v) for v in b] for b in boxes)
                cases.append({"cascade": name, "image": image, "params": p, "boxes": boxes})
                if p["minNeighbors"] == 0:
                    # groupRectangles alone, on OpenCV's own raw windows.
                    for n in (1, 3, 5):
                        g, _ = cv2.groupRectangles([list(b) for b in boxes], n, 0.2)
                        groups.append({"raw": boxes, "minNeighbors": n,
                                       "boxes": sorted([int(v) for v in b] for b in g)})
    doc = {"opencv": cv2.__version__, "cases": cases, "groups": groups}
    with open(out, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
