package vmtest

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" format the kernel unpacks
// as an initramfs. Several complete archives may be concatenated; the kernel
// unpacks them in order, later entries replacing earlier ones.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool // directories already written
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{}}
}

const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

func (c *cpioWriter) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	var b bytes.Buffer
	b.WriteString(hdr)
	b.WriteString(name)
	b.WriteByte(0)
	pad(&b, b.Len())
	_, c.err = c.w.Write(b.Bytes())
}

func pad(b *bytes.Buffer, n int) {
	for n%4 != 0 {
		b.WriteByte(0)
		n++
	}
}

// clean turns a guest path into the archive's relative form ("bin/sh").
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// mkdirAll writes the directory entries leading to name, each once.
func (c *cpioWriter) mkdirAll(name string) {
	name = clean(name)
	if name == "" || name == "." || c.dirs[name] {
		return
	}
	c.mkdirAll(path.Dir(name))
	c.dirs[name] = true
	c.header(name, modeDir|0o755, 0, 0, 0)
}

// file writes a regular file, creating its parent directories.
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, modeRegular|perm, len(data), 0, 0)
	c.body(data)
}

// fileFrom writes a regular file of size bytes read from r.
func (c *cpioWriter) fileFrom(name string, perm uint32, size int64, r io.Reader) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, modeRegular|perm, int(size), 0, 0)
	if c.err != nil {
		return
	}
	n, err := io.CopyN(c.w, r, size)
	if err != nil {
		c.err = fmt.Errorf("archiving %s: copied %d of %d bytes: %w", name, n, size, err)
		return
	}
	c.padTo(size)
}

func (c *cpioWriter) symlink(name, target string) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, modeSymlink|0o777, len(target), 0, 0)
	c.body([]byte(target))
}

func (c *cpioWriter) charDev(name string, perm, major, minor uint32) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, modeCharDev|perm, 0, major, minor)
}

func (c *cpioWriter) body(data []byte) {
	if c.err != nil {
		return
	}
	if _, c.err = c.w.Write(data); c.err != nil {
		return
	}
	c.padTo(int64(len(data)))
}

func (c *cpioWriter) padTo(n int64) {
	if c.err != nil || n%4 == 0 {
		return
	}
	_, c.err = c.w.Write(make([]byte, 4-n%4))
}

// close writes the trailer; the archive is complete after it.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	return c.err
}
