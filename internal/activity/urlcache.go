package activity

import (
	"hash/maphash"
	"sync"
)

// A page's URL arrives with every event of every visitor to it, and
// parsing, scrubbing and normalising it was the largest part of Prepare
// (TestLoadCollect's profile). What a URL normalises to depends only on
// the URL and the collector's configuration, so it is kept by URL. The key
// is two independent hashes of the URL (128 bits), not the URL itself: a
// raw URL may carry an email or a token in its query, which the cache must
// not hold after the request. Only what normalisation keeps — scrubbed,
// and only the parts the policy records — is held, for URLs on an origin
// of the site and at most maxCachedURL long. The cache is bounded and
// emptied when full: a flood of new URLs only costs misses.

// pageParts is what a page URL normalises to.
type pageParts struct {
	origin   string // lower-case scheme://host, for the site's origin check
	host     string // the host as written, for the referrer comparison
	page     string // scrubbed path
	query    string // kept campaign parameters
	campaign string
	search   string
}

// refParts is what a referrer normalises to.
type refParts struct {
	host string // as written
	norm string // lower-case scheme://host + scrubbed path
}

// urlCacheMax bounds each cache's entries: about 100 bytes each for real
// pages, a few MB at most for URLs made to be as long as maxCachedURL.
const urlCacheMax = 4096

// maxCachedURL is the longest URL kept: a real page's is far shorter.
const maxCachedURL = 512

type urlKey [2]uint64

type urlCache[V any] struct {
	mu   sync.Mutex
	a, b maphash.Seed
	m    map[urlKey]V
}

func newURLCache[V any]() *urlCache[V] {
	return &urlCache[V]{a: maphash.MakeSeed(), b: maphash.MakeSeed(), m: make(map[urlKey]V, urlCacheMax)}
}

func (c *urlCache[V]) key(raw string) urlKey {
	return urlKey{maphash.String(c.a, raw), maphash.String(c.b, raw)}
}

func (c *urlCache[V]) get(k urlKey) (V, bool) {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	return v, ok
}

func (c *urlCache[V]) put(k urlKey, v V) {
	c.mu.Lock()
	if len(c.m) >= urlCacheMax {
		clear(c.m)
	}
	c.m[k] = v
	c.mu.Unlock()
}
