// Package media holds the types that carry pictures between Tianshu's
// parts inside one process: a frame read from a device or an upload
// travels as an Image through the flow to algorithms and to the records
// store without being copied or re-encoded. It imports nothing of ours, so
// sources, the algorithm runtime and the data center can all use it
// without importing each other.
package media

import (
	"mime"
	"net/http"
	"time"
)

// Image is an encoded image (JPEG, PNG, ...) travelling in a message's
// data or an algorithm's inputs.
type Image struct {
	Bytes       []byte
	ContentType string
}

// EncodedImage returns the bytes and content type, sniffing the type when
// it is empty.
func (im Image) EncodedImage() ([]byte, string) {
	ct := im.ContentType
	if ct == "" {
		ct = http.DetectContentType(im.Bytes)
	}
	return im.Bytes, ct
}

// Encoded is any value that can hand over encoded image bytes without
// copying: frame types of other packages implement it so that they travel
// to algorithms unchanged, never as base64.
type Encoded interface {
	EncodedImage() (data []byte, contentType string)
}

// AsImage returns the encoded bytes of an image-like value: an Image, a
// *Image, an Encoded, or a plain []byte (whose type is sniffed). ok is
// false for anything else.
func AsImage(v any) (data []byte, contentType string, ok bool) {
	switch x := v.(type) {
	case Image:
		data, contentType = x.EncodedImage()
		return data, contentType, true
	case *Image:
		if x == nil {
			return nil, "", false
		}
		data, contentType = x.EncodedImage()
		return data, contentType, true
	case []byte:
		return x, http.DetectContentType(x), true
	case Encoded:
		data, contentType = x.EncodedImage()
		return data, contentType, true
	}
	return nil, "", false
}

// Frame is one picture of a video, decoded in order.
type Frame struct {
	// Seq counts frames from 1.
	Seq  uint64
	Time time.Time
	// Image is the encoded picture (JPEG).
	Image         Image
	Width, Height int
}

// Extension returns the file extension of common media types (".jpg" for
// image/jpeg), "" for others, for naming stored objects.
func Extension(contentType string) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/webp":
		return ".webp"
	case "video/mp4":
		return ".mp4"
	case "application/json":
		return ".json"
	}
	return ""
}
