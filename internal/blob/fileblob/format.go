package fileblob

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// An object is one file: the content, then a trailer holding its metadata.
//
//	content | metadata JSON | uint32 big-endian length of the JSON | magic
//
// Keeping metadata in the same file as the content (rather than in a sidecar
// file or xattrs) means one rename publishes both at once, so concurrent
// Puts of one key can never pair one writer's content with another's
// content type or ETag. The trailer (not a header) lets Put stream the
// content once and append the hash it computed on the way.
const magic = "TSBLOB\x00\x01"

const (
	trailerFixed = 4 + len(magic)
	maxMetaLen   = 64 << 10 // far above any real trailer; bounds reads of corrupt files
)

// errCorrupt marks files in the store that are not objects we wrote.
var errCorrupt = errors.New("fileblob: corrupt object file")

type meta struct {
	ContentType string `json:"content_type"`
	ETag        string `json:"etag"`
}

func appendTrailer(w io.Writer, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(b)))
	b = append(b, magic...)
	_, err = w.Write(b)
	return err
}

// readMeta reads the trailer of an open object file and returns its
// metadata, content size and modification time.
func readMeta(f *os.File) (m meta, size int64, fi os.FileInfo, err error) {
	fi, err = f.Stat()
	if err != nil {
		return meta{}, 0, nil, err
	}
	total := fi.Size()
	if total < int64(trailerFixed) {
		return meta{}, 0, nil, fmt.Errorf("%w: %s: too short", errCorrupt, f.Name())
	}
	var fixed [trailerFixed]byte
	if _, err := f.ReadAt(fixed[:], total-int64(trailerFixed)); err != nil {
		return meta{}, 0, nil, err
	}
	if string(fixed[4:]) != magic {
		return meta{}, 0, nil, fmt.Errorf("%w: %s: bad magic", errCorrupt, f.Name())
	}
	n := int64(binary.BigEndian.Uint32(fixed[:4]))
	if n > maxMetaLen || n > total-int64(trailerFixed) {
		return meta{}, 0, nil, fmt.Errorf("%w: %s: bad trailer length", errCorrupt, f.Name())
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, total-int64(trailerFixed)-n); err != nil {
		return meta{}, 0, nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return meta{}, 0, nil, fmt.Errorf("%w: %s: %v", errCorrupt, f.Name(), err)
	}
	return m, total - int64(trailerFixed) - n, fi, nil
}
