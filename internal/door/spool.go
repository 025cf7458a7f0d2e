package door

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"steward/internal/fault"
)

// Spool holds an upload while it is checked and cleaned, before it is
// sealed: a temporary file, unlinked as soon as it is created (only the
// open descriptor reaches it), encrypted with AES-256-CTR under a key that
// lives only in memory, so the raw upload, metadata and all, never rests
// on disk in the clear — not even after a crash. It reads back at any
// offset (a video's boxes are found by seeking). It is not a sealed value:
// nothing about it outlives Close.
type Spool struct {
	f     *os.File
	block cipher.Block
	size  int64
}

// NewSpool copies r into a spool in dir, refusing more than max bytes
// (fault.TooLarge) and a reader that fails (fault.Invalid: the upload was
// cut off).
func NewSpool(dir string, r io.Reader, max int64) (*Spool, error) {
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return nil, fmt.Errorf("door: spool: %w", err)
	}
	os.Remove(f.Name())
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &Spool{f: f, block: block}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if s.size+int64(n) > max {
				s.Close()
				return nil, fault.New(fault.TooLarge, "the file is larger than the %d MB this site takes", max>>20)
			}
			s.xor(buf[:n], s.size)
			if _, err := f.Write(buf[:n]); err != nil {
				s.Close()
				return nil, fmt.Errorf("door: spool: %w", err)
			}
			s.size += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			s.Close()
			var fe *fault.Error
			if errors.As(rerr, &fe) {
				return nil, fe // the reader's own verdict (a size limit)
			}
			return nil, fault.Wrap(fault.Invalid, rerr, "the upload was cut off")
		}
	}
	return s, nil
}

// xor encrypts or decrypts b, which sits at offset off of the file.
func (s *Spool) xor(b []byte, off int64) {
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/aes.BlockSize))
	stream := cipher.NewCTR(s.block, iv[:])
	if skip := int(off % aes.BlockSize); skip > 0 {
		var pad [aes.BlockSize]byte
		stream.XORKeyStream(pad[:skip], pad[:skip])
	}
	stream.XORKeyStream(b, b)
}

// ReadAt reads the upload's plaintext at off.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.f.ReadAt(p, off)
	s.xor(p[:n], off)
	return n, err
}

// Reader reads the upload from the start.
func (s *Spool) Reader() io.Reader { return io.NewSectionReader(s, 0, s.size) }

// Size is the number of bytes spooled.
func (s *Spool) Size() int64 { return s.size }

// Close drops the spool (the file was already unlinked).
func (s *Spool) Close() error { return s.f.Close() }
