package activity

import (
	"strings"
	"sync"

	"github.com/mileusna/useragent"
)

// Agent is what we keep of a user agent: the browser and system families.
// The full string is never stored.
type Agent struct {
	Browser string
	OS      string
	Bot     bool
}

// agentCacheSize bounds each generation of the parse cache. Real traffic
// has a few thousand distinct user agents a day; a flood of random ones
// only cycles the cache.
const (
	agentCacheSize = 4096
	maxAgentLen    = 512
)

// agents parses user agents, caching results by the exact string: parsing
// is the costliest step of collection after JSON decoding. Two
// generations give an LRU-like bound without a list: when the current map
// fills, it becomes the previous one and the oldest is dropped.
type agents struct {
	mu        sync.RWMutex
	cur, prev map[string]Agent
}

func newAgents() *agents {
	return &agents{cur: make(map[string]Agent, agentCacheSize)}
}

func (a *agents) parse(ua string) Agent {
	if len(ua) > maxAgentLen {
		return Agent{Bot: true} // no browser sends such a thing
	}
	a.mu.RLock()
	ag, ok := a.cur[ua]
	if !ok {
		ag, ok = a.prev[ua]
	}
	a.mu.RUnlock()
	if ok {
		return ag
	}
	ag = parseAgent(ua)
	a.mu.Lock()
	if len(a.cur) >= agentCacheSize {
		a.prev, a.cur = a.cur, make(map[string]Agent, agentCacheSize)
	}
	a.cur[strings.Clone(ua)] = ag
	a.mu.Unlock()
	return ag
}

// parseAgent classifies ua. Anything that is not a browser counts as a bot:
// every browser's user agent starts with "Mozilla/", while scripts (curl,
// python-requests, Go-http-client) and crawlers do not or say so; headless
// browsers are scrapers far more often than people.
func parseAgent(ua string) Agent {
	if ua == "" || !strings.HasPrefix(ua, "Mozilla/") {
		return Agent{Bot: true}
	}
	p := useragent.Parse(ua)
	if p.Bot || p.Name == useragent.HeadlessChrome {
		return Agent{Bot: true}
	}
	lower := strings.ToLower(ua)
	for _, w := range []string{"bot", "crawl", "spider", "slurp", "headless", "lighthouse", "preview", "phantomjs", "monitor"} {
		if strings.Contains(lower, w) {
			return Agent{Bot: true}
		}
	}
	ag := Agent{Browser: clean(p.Name, 40), OS: clean(p.OS, 40)}
	if ag.Browser == "" {
		ag.Browser = "Other"
	}
	if ag.OS == "" {
		ag.OS = "Other"
	}
	return ag
}
