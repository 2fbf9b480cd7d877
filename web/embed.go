// Package web is the console: the single-page app under src/, built by
// `make web` into dist/, which is committed and embedded here so that the
// binary serves the console without Node.js. Handler serves it.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Dist returns the built console: index.html and assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path; fs.Sub fails only on invalid ones
	}
	return sub
}
