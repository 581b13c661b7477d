// Package xproc holds two small programs for the hash package's tests, a
// writer (htwriter) and a reader (htreader). They are deliberately
// different binaries, with different code and imports, so the test shows
// that a table made by one is usable with the by-key API by the other:
// nothing in the shared table depends on where a binary put its hash
// function.
package xproc
