package algorithm

import "net/http"

// Image is an encoded image (JPEG, PNG, ...) travelling in an inputs map.
// Plain []byte values are accepted too; their type is sniffed.
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

// ImageSource is any input value that can hand over encoded image bytes
// without copying: frame types of other packages implement it so that
// they travel to algorithms unchanged, never as base64.
type ImageSource interface {
	EncodedImage() (data []byte, contentType string)
}

// asImage returns the encoded bytes of an image-like input value.
func asImage(v any) (data []byte, contentType string, ok bool) {
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
	case ImageSource:
		data, contentType = x.EncodedImage()
		return data, contentType, true
	}
	return nil, "", false
}
