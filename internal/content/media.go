package content

import (
	"io"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/media"
)

// cleaned is what cleaning an upload produced.
type cleaned struct {
	mime          string
	size          int64
	width, height int
	thumb         []byte // a JPEG thumbnail of a photo, or nil
}

// detect finds what an upload is from its first bytes.
func detect(sp *door.Spool) (string, error) {
	head := make([]byte, 3072)
	n, _ := sp.ReadAt(head, 0)
	switch kind, mime := media.Detect(head[:n]); kind {
	case media.Image:
		return FilePhoto, nil
	case media.Video:
		return FileVideo, nil
	default:
		return "", fault.New(fault.Unsupported, "this kind of file (%s) is not taken: upload a photo (JPEG, PNG, GIF, WebP) or a video (MP4, QuickTime)", mime)
	}
}

// counter counts what passes to w.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// clean writes the upload to w without its location and device metadata.
func clean(kind string, sp *door.Spool, w io.Writer) (cleaned, error) {
	cw := &counter{w: w}
	switch kind {
	case FilePhoto:
		info, err := media.CleanImage(sp.Reader(), cw, media.Limits{})
		if err != nil {
			return cleaned{}, err
		}
		return cleaned{mime: info.MIME, size: cw.n, width: info.Width, height: info.Height, thumb: info.Thumbnail}, nil
	default:
		info, err := media.CleanVideo(sp, sp.Size(), cw)
		if err != nil {
			return cleaned{}, err
		}
		return cleaned{mime: info.MIME, size: cw.n, width: info.Width, height: info.Height}, nil
	}
}
