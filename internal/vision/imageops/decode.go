// Package imageops holds the image operations the built-in vision
// algorithms share: decoding with a bound on memory, grayscale conversion,
// cropping, resizing, privacy masking (mosaic and blur) and JPEG encoding.
// Functions take and return standard library images; none keeps state.
package imageops

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registered for Decode
	"image/jpeg"
	_ "image/png" // registered for Decode
	"io"
)

// DefaultMaxPixels is the pixel limit Decode applies when Limits.MaxPixels
// is zero: 40 megapixels, a little over an 8K frame.
const DefaultMaxPixels = 40_000_000

// DefaultMaxBytes is the input size limit when Limits.MaxBytes is zero.
const DefaultMaxBytes = 64 << 20

// DefaultMaxMemory is the decoded-size limit when Limits.MaxMemory is zero:
// a 40 MP image at 4 bytes per pixel.
const DefaultMaxMemory = 4 * DefaultMaxPixels

// Limits bound what Decode accepts.
type Limits struct {
	// MaxPixels is the largest width×height accepted; 0 means
	// DefaultMaxPixels.
	MaxPixels int64
	// MaxBytes is the largest encoded input accepted; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// MaxMemory bounds the decoded image's pixel memory, estimated from
	// the header as width × height × bytes per pixel of the colour model
	// (1 for gray and paletted, 1.5–3 for YCbCr, 4 for RGBA and CMYK, 8
	// for 16-bit RGBA); 0 means DefaultMaxMemory. Progressive JPEGs need
	// about 2 bytes per pixel and component more while decoding.
	MaxMemory int64
}

// Errors Decode returns; each is wrapped with details.
var (
	// ErrTooLarge means the header announces more pixels than allowed, or
	// the input is over MaxBytes: the caller should reject the image, not
	// retry.
	ErrTooLarge = errors.New("imageops: image too large")
	// ErrFormat means the data is not a JPEG, PNG or GIF image, or is
	// truncated or corrupt.
	ErrFormat = errors.New("imageops: unreadable image")
)

// Decode reads a JPEG, PNG or GIF image (the first frame of a GIF). It
// reads the header first and refuses images over the pixel or memory limit
// before any pixel memory is allocated, so a small file announcing
// 20000×20000 costs nothing; decoding then allocates about
// width×height×(bytes per pixel of the format). It returns the format name ("jpeg", "png", "gif").
// Grayscale JPEGs decode to *image.Gray, colour ones to *image.YCbCr, and
// CMYK/YCCK (Adobe) ones to *image.CMYK; Gray and the other helpers accept
// all of them.
func Decode(r io.Reader, lim Limits) (image.Image, string, error) {
	maxBytes := lim.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("imageops: reading image: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, "", fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
	}
	return DecodeBytes(data, lim)
}

// DecodeBytes is Decode on an encoded image already in memory; MaxBytes is
// not applied.
func DecodeBytes(data []byte, lim Limits) (image.Image, string, error) {
	maxPixels := lim.MaxPixels
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, format, fmt.Errorf("%w: %s header says %dx%d", ErrFormat, format, cfg.Width, cfg.Height)
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	if px > maxPixels {
		return nil, format, fmt.Errorf("%w: %s header says %dx%d (%d pixels, limit %d)", ErrTooLarge, format, cfg.Width, cfg.Height, px, maxPixels)
	}
	maxMem := lim.MaxMemory
	if maxMem <= 0 {
		maxMem = DefaultMaxMemory
	}
	if mem := px * bytesPerPixel(cfg.ColorModel) / 2; mem > maxMem {
		return nil, format, fmt.Errorf("%w: %s %dx%d needs about %d bytes decoded (limit %d)", ErrTooLarge, format, cfg.Width, cfg.Height, mem, maxMem)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, format, fmt.Errorf("%w: %s: %v", ErrFormat, format, err)
	}
	return img, format, nil
}

// bytesPerPixel estimates, in half bytes, what one pixel of a decoded
// image of model m takes (YCbCr is counted at 4:4:4, its worst case).
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 2
	case color.Gray16Model, color.Alpha16Model:
		return 4
	case color.YCbCrModel:
		return 6
	case color.RGBA64Model, color.NRGBA64Model:
		return 16
	}
	if _, ok := m.(color.Palette); ok {
		return 2
	}
	return 8 // RGBA, NRGBA, CMYK, NYCbCrA (5) and anything else
}

// Gray converts img to 8-bit luma. *image.Gray is returned as is;
// *image.YCbCr (colour JPEG) gives its Y plane directly, which is what
// libjpeg returns for a grayscale read; other images are converted pixel by
// pixel as Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601) in 15-bit fixed
// point — weights 9798, 19235 and 3735, which sum to 2¹⁵ — rounded to
// nearest, after compositing over black. On 8-bit RGB this gives exactly
// what OpenCV 4's cvtColor(COLOR_BGR2GRAY) gives, which the cascade
// accuracy test relies on.
func Gray(img image.Image) *image.Gray {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.Gray:
		return m
	case *image.YCbCr:
		out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			off := m.YOffset(b.Min.X, b.Min.Y+y)
			copy(out.Pix[y*out.Stride:y*out.Stride+b.Dx()], m.Y[off:off+b.Dx()])
		}
		return out
	}
	out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	switch m := img.(type) {
	case *image.RGBA:
		for y := 0; y < b.Dy(); y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride : y*out.Stride+b.Dx()]
			for x := range dst {
				dst[x] = luma(src[4*x], src[4*x+1], src[4*x+2])
			}
		}
	case *image.NRGBA:
		for y := 0; y < b.Dy(); y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride : y*out.Stride+b.Dx()]
			for x := range dst {
				r, g, bl, a := uint32(src[4*x]), uint32(src[4*x+1]), uint32(src[4*x+2]), uint32(src[4*x+3])
				if a != 255 {
					r, g, bl = (r*a+127)/255, (g*a+127)/255, (bl*a+127)/255
				}
				dst[x] = luma(uint8(r), uint8(g), uint8(bl))
			}
		}
	default:
		for y := 0; y < b.Dy(); y++ {
			dst := out.Pix[y*out.Stride : y*out.Stride+b.Dx()]
			for x := range dst {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				dst[x] = luma(uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			}
		}
	}
	return out
}

// Luma is Gray without the copy where there is a plane to share: for a
// *image.YCbCr (colour JPEG) it returns an image over its Y plane (at the
// origin, as Gray's), so the
// caller must not change the pixels; other images go through Gray. A 720p
// frame's copy is 0.9 MB per frame of a camera.
func Luma(img image.Image) *image.Gray {
	if m, ok := img.(*image.YCbCr); ok {
		b := m.Rect
		return &image.Gray{Pix: m.Y[m.YOffset(b.Min.X, b.Min.Y):], Stride: m.YStride, Rect: image.Rect(0, 0, b.Dx(), b.Dy())}
	}
	return Gray(img)
}

func luma(r, g, b uint8) uint8 {
	return uint8((uint32(r)*9798 + uint32(g)*19235 + uint32(b)*3735 + 1<<14) >> 15)
}

// EncodeJPEG encodes img as a baseline JPEG at quality 1–100 (values
// outside are clamped; 0 means 85).
func EncodeJPEG(w io.Writer, img image.Image, quality int) error {
	if quality == 0 {
		quality = 85
	}
	quality = min(max(quality, 1), 100)
	if err := jpeg.Encode(w, img, &jpeg.Options{Quality: quality}); err != nil {
		return fmt.Errorf("imageops: encoding JPEG: %w", err)
	}
	return nil
}

// EncodeJPEGBytes is EncodeJPEG into a new byte slice.
func EncodeJPEGBytes(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := EncodeJPEG(&buf, img, quality); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
