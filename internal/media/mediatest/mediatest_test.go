package mediatest_test

import (
	"bytes"
	"testing"

	"steward/internal/media"
	"steward/internal/media/mediatest"
)

func TestFixturesAreCleaned(t *testing.T) {
	for _, c := range []struct {
		ext  string
		data []byte
	}{{".jpg", mediatest.JPEGWithGPS(t)}, {".mp4", mediatest.MovieWithLocation(t)}} {
		before := mediatest.ExifTool(t, c.data, c.ext)
		if !mediatest.HasLocationOrDevice(before) {
			t.Fatalf("%s fixture: %v", c.ext, before)
		}
		var out bytes.Buffer
		var err error
		if c.ext == ".jpg" {
			_, err = media.CleanImage(bytes.NewReader(c.data), &out, media.Limits{})
		} else {
			_, err = media.CleanVideo(bytes.NewReader(c.data), int64(len(c.data)), &out)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.ext, err)
		}
		if after := mediatest.ExifTool(t, out.Bytes(), c.ext); mediatest.HasLocationOrDevice(after) {
			t.Errorf("%s cleaned still has %v", c.ext, after)
		}
	}
}
