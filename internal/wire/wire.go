// Package wire holds the small binary encoding helpers that Tally's state snapshots and
// commands share: unsigned and signed varints, length-prefixed strings and fixed-width floats,
// appended to a byte slice by Writer and read back by Reader with a sticky error.
//
// The format carries no type information of its own; every user writes a version byte first
// and reads fields back in the order it wrote them.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrShort is returned (wrapped) when a Reader runs out of bytes.
var ErrShort = errors.New("wire: unexpected end of data")

// Writer appends encoded values to Buf. The zero value is ready to use.
type Writer struct {
	Buf []byte
}

// Uvarint appends an unsigned varint.
func (w *Writer) Uvarint(v uint64) { w.Buf = binary.AppendUvarint(w.Buf, v) }

// Varint appends a zig-zag signed varint.
func (w *Writer) Varint(v int64) { w.Buf = binary.AppendVarint(w.Buf, v) }

// Byte appends one byte.
func (w *Writer) Byte(b byte) { w.Buf = append(w.Buf, b) }

// Bool appends a byte 0 or 1.
func (w *Writer) Bool(b bool) {
	if b {
		w.Buf = append(w.Buf, 1)
	} else {
		w.Buf = append(w.Buf, 0)
	}
}

// Float appends the IEEE-754 bits of f, little-endian.
func (w *Writer) Float(f float64) {
	w.Buf = binary.LittleEndian.AppendUint64(w.Buf, math.Float64bits(f))
}

// String appends a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uvarint(uint64(len(s)))
	w.Buf = append(w.Buf, s...)
}

// Bytes appends a length-prefixed byte slice.
func (w *Writer) Bytes(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.Buf = append(w.Buf, b...)
}

// Reader decodes what a Writer wrote. After the first error every call returns a zero value
// and Err reports that error.
type Reader struct {
	buf []byte
	off int
	err error
}

// NewReader reads from b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Err is the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Len is the number of bytes not yet read.
func (r *Reader) Len() int { return len(r.buf) - r.off }

// Fail records err unless an error is already recorded.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *Reader) short(what string) {
	r.Fail(fmt.Errorf("%w reading %s at offset %d", ErrShort, what, r.off))
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.off:])
	if n <= 0 {
		r.short("uvarint")
		return 0
	}
	r.off += n
	return v
}

// Count reads an unsigned varint used as an element count and checks it against the bytes
// left, assuming each element takes at least minSize bytes, so a corrupt count cannot make
// the caller allocate without bound.
func (r *Reader) Count(minSize int) int {
	n := r.Uvarint()
	if minSize < 1 {
		minSize = 1
	}
	if r.err == nil && n > uint64(r.Len()/minSize) {
		r.Fail(fmt.Errorf("wire: count %d exceeds the %d bytes left at offset %d", n, r.Len(), r.off))
		return 0
	}
	return int(n)
}

// Varint reads a zig-zag signed varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf[r.off:])
	if n <= 0 {
		r.short("varint")
		return 0
	}
	r.off += n
	return v
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.buf) {
		r.short("byte")
		return 0
	}
	b := r.buf[r.off]
	r.off++
	return b
}

// Bool reads a byte written by Writer.Bool.
func (r *Reader) Bool() bool {
	switch b := r.Byte(); b {
	case 0:
		return false
	case 1:
		return true
	default:
		r.Fail(fmt.Errorf("wire: bad bool byte %d at offset %d", b, r.off-1))
		return false
	}
}

// Float reads a float written by Writer.Float.
func (r *Reader) Float() float64 {
	if r.err != nil {
		return 0
	}
	if r.Len() < 8 {
		r.short("float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.off:]))
	r.off += 8
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	b := r.bytes("string")
	return string(b)
}

// Bytes reads a length-prefixed byte slice; the result is a copy.
func (r *Reader) Bytes() []byte {
	b := r.bytes("bytes")
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func (r *Reader) bytes(what string) []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(r.Len()) {
		r.short(what)
		return nil
	}
	b := r.buf[r.off : r.off+int(n)]
	r.off += int(n)
	return b
}
