package activity

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

//go:embed tracker.js
var trackerSource []byte

// Tracker returns tracker.js for the policy in force: the script only
// sends what the policy records (so a policy without referrers never even
// transmits them), and an ETag for caching. Features: p page views, r
// referrer, s screen class, v view time, o outbound links, d downloads,
// e custom events, q search terms.
func (c *Collector) Tracker() (js []byte, etag string) {
	return c.tracker, c.trackerTag
}

func buildTracker(cfg Config) ([]byte, string) {
	var f []byte
	for _, x := range []struct {
		field string
		flag  byte
	}{
		{FieldPage, 'p'}, {FieldReferrer, 'r'}, {FieldScreen, 's'}, {FieldViewTime, 'v'},
		{FieldOutboundLink, 'o'}, {FieldAssetInteraction, 'd'}, {FieldEvent, 'e'}, {FieldSearchTerms, 'q'},
	} {
		if cfg.Fields[x.field] {
			f = append(f, x.flag)
		}
	}
	js := bytes.Replace(trackerSource, []byte("__FEATURES__"), f, 1)
	sum := sha256.Sum256(js)
	return js, `"` + hex.EncodeToString(sum[:8]) + `"`
}
