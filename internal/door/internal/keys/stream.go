package keys

import (
	"bufio"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A stream (a stored file) is sealed in chunks, so that neither side holds
// it whole: a header of streamMagic and a random 7-byte nonce prefix, then
// chunks of up to StreamChunk bytes of plaintext, each sealed with
// AES-256-GCM under the key, with the nonce prefix, the chunk's 4-byte
// counter and a last-chunk flag as its nonce, and the key's subject and
// category as additional data. Reordering, dropping, repeating or cutting
// chunks off the end makes opening fail (the STREAM construction of
// Hoang, Reyhanitabar, Rogaway and Vizár, as Tink and age use it).

// StreamChunk is the plaintext size of every chunk but the last.
const StreamChunk = 64 << 10

const (
	streamMagic  = "STWS\x01"
	streamPrefix = 7
	streamHeader = len(streamMagic) + streamPrefix
	tagSize      = 16
)

// StreamOverhead is how many bytes sealing adds to n bytes of plaintext.
func StreamOverhead(n int64) int64 {
	chunks := max(1, (n+StreamChunk-1)/StreamChunk)
	return int64(streamHeader) + chunks*tagSize
}

// ErrTruncated is returned when a sealed stream ends early or was cut.
var ErrTruncated = errors.New("keys: the sealed stream is incomplete or altered")

type streamNonce struct {
	b [12]byte
}

func (n *streamNonce) set(prefix []byte, counter uint32, last bool) []byte {
	copy(n.b[:streamPrefix], prefix)
	binary.BigEndian.PutUint32(n.b[streamPrefix:11], counter)
	n.b[11] = 0
	if last {
		n.b[11] = 1
	}
	return n.b[:]
}

// sealWriter seals what is written to it into w.
type sealWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	ad      []byte
	prefix  [streamPrefix]byte
	nonce   streamNonce
	counter uint32
	buf     []byte // plaintext not sealed yet
	out     []byte
	started bool
	closed  bool
	err     error
}

// NewSealWriter returns a writer that seals into w under the key; Close
// seals the last chunk (and must be called, or the stream does not open).
// It refuses a destroyed key (ErrShredded).
func (k *Key) NewSealWriter(w io.Writer) (io.WriteCloser, error) {
	if !k.Usable() {
		return nil, fmt.Errorf("keys: %s: %w", k.name(), ErrShredded)
	}
	s := &sealWriter{w: w, aead: k.aead, ad: aad(k.subject, k.category), buf: make([]byte, 0, StreamChunk)}
	rand.Read(s.prefix[:])
	return s, nil
}

func (s *sealWriter) header() error {
	if s.started {
		return nil
	}
	s.started = true
	_, err := s.w.Write(append([]byte(streamMagic), s.prefix[:]...))
	return err
}

func (s *sealWriter) seal(last bool) error {
	if s.counter == ^uint32(0) {
		return errors.New("keys: a sealed stream holds at most 2^32 chunks")
	}
	s.out = s.aead.Seal(s.out[:0], s.nonce.set(s.prefix[:], s.counter, last), s.buf, s.ad)
	s.counter++
	s.buf = s.buf[:0]
	_, err := s.w.Write(s.out)
	return err
}

func (s *sealWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errors.New("keys: write to a closed sealed stream")
	}
	if s.err = s.header(); s.err != nil {
		return 0, s.err
	}
	n := 0
	for len(p) > 0 {
		// A full chunk is sealed only once more data follows it: the last
		// chunk must carry the flag.
		if len(s.buf) == StreamChunk {
			if s.err = s.seal(false); s.err != nil {
				return n, s.err
			}
		}
		c := min(len(p), StreamChunk-len(s.buf))
		s.buf = append(s.buf, p[:c]...)
		p = p[c:]
		n += c
	}
	return n, nil
}

// Close seals the last chunk. It does not close the underlying writer.
func (s *sealWriter) Close() error {
	if s.err != nil || s.closed {
		return s.err
	}
	s.closed = true
	if s.err = s.header(); s.err != nil {
		return s.err
	}
	s.err = s.seal(true)
	clear(s.buf[:cap(s.buf)])
	return s.err
}

// openReader opens a sealed stream as it is read.
type openReader struct {
	r       *bufio.Reader
	aead    cipher.AEAD
	ad      []byte
	prefix  [streamPrefix]byte
	nonce   streamNonce
	counter uint32
	chunk   []byte // sealed chunk being read
	opened  []byte // the chunk's plaintext
	plain   []byte // opened bytes not returned yet
	done    bool
	err     error
}

// NewOpenReader returns a reader of the plaintext of the sealed stream r.
// A read returns ErrTruncated if the stream was cut or altered, and
// ErrCorrupt if a chunk does not open; no byte of a chunk is returned
// before its tag is checked.
func (k *Key) NewOpenReader(r io.Reader) (io.Reader, error) {
	if !k.Usable() {
		return nil, fmt.Errorf("keys: %s: %w", k.name(), ErrShredded)
	}
	br := bufio.NewReaderSize(r, StreamChunk+tagSize+1)
	var h [streamHeader]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, ErrTruncated
	}
	if string(h[:len(streamMagic)]) != streamMagic {
		return nil, fmt.Errorf("keys: not a sealed stream: %w", ErrCorrupt)
	}
	o := &openReader{r: br, aead: k.aead, ad: aad(k.subject, k.category), chunk: make([]byte, StreamChunk+tagSize),
		opened: make([]byte, 0, StreamChunk)}
	copy(o.prefix[:], h[len(streamMagic):])
	return o, nil
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// next reads and opens one chunk.
func (o *openReader) next() error {
	n, err := io.ReadFull(o.r, o.chunk)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		o.done = true // a short chunk at the end: the last one
	case errors.Is(err, io.EOF):
		return ErrTruncated // the last chunk is missing
	case err != nil:
		return err
	default:
		// A full chunk: the last one only if nothing follows. A read
		// error here is the store's, not a cut stream.
		if _, perr := o.r.Peek(1); errors.Is(perr, io.EOF) {
			o.done = true
		} else if perr != nil {
			return perr
		}
	}
	if n < tagSize {
		return ErrTruncated
	}
	// Into a buffer of its own: a failed Open clears its output, and the
	// chunk is needed again to tell a cut stream from an altered one.
	plain, err := o.aead.Open(o.opened[:0], o.nonce.set(o.prefix[:], o.counter, o.done), o.chunk[:n], o.ad)
	if err != nil {
		if !o.done {
			// A chunk sealed as last followed by more bytes, or altered.
			return fmt.Errorf("keys: chunk %d: %w", o.counter, ErrCorrupt)
		}
		// The stream may have been cut at a chunk boundary: the chunk
		// read as last was not sealed as last.
		if _, e := o.aead.Open(nil, o.nonce.set(o.prefix[:], o.counter, false), o.chunk[:n], o.ad); e == nil {
			return ErrTruncated
		}
		return fmt.Errorf("keys: chunk %d: %w", o.counter, ErrCorrupt)
	}
	o.counter++
	o.plain = plain
	return nil
}
