// Package vision is the home of Tianshu's built-in vision algorithms,
// written in pure Go so that the embedded platform finds and describes
// faces with no download and no GPU. The work is in its subpackages:
//
//   - imageops: bounded decoding (pixel and memory limits checked on the
//     header), grayscale, crop with margin, resize, mosaic and blur
//     masking, JPEG encoding — the "image-ops" algorithm;
//   - cascade: OpenCV-compatible Haar and LBP cascade classifiers with
//     detectMultiScale and groupRectangles semantics, and OpenCV's
//     frontal-face cascades embedded;
//   - quality: per-face size, sharpness, brightness, contrast, frontalness
//     and a best-shot score — the "face-quality" algorithm;
//   - faces: decode → detect → assess in one call, returning plain
//     JSON-ready structs — the "face-detect" algorithm;
//   - motion: frame-difference motion detection with a region mask, state
//     kept per stream — the "motion" algorithm;
//   - jpegluma: a JPEG decoder of the luma plane alone (and its
//     eighth-size DC image), for face detection and motion, which read
//     nothing else of a frame.
//
// None of them keeps package-level state; the algorithm runtime registers
// them as builtin algorithms.
package vision
