package activity

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"steward/internal/policy"
)

// Policy field names this package stores (the shared vocabulary between
// the code and the policies' categories). A field the policy in force does
// not declare is never stored, and an event type whose field is not
// declared is refused.
const (
	FieldPage             = "page"
	FieldReferrer         = "referrer"
	FieldSearchTerms      = "search_terms"
	FieldViewTime         = "view_time"
	FieldOutboundLink     = "outbound_link"
	FieldAssetInteraction = "asset_interaction"
	FieldEvent            = "event"
	FieldCountry          = "country"
	FieldRegion           = "region"
	FieldCity             = "city"
	FieldBrowser          = "browser"
	FieldOS               = "os"
	FieldScreen           = "screen"
)

// AllFields lists every field the collector can record.
var AllFields = []string{
	FieldPage, FieldReferrer, FieldSearchTerms, FieldViewTime, FieldOutboundLink,
	FieldAssetInteraction, FieldEvent, FieldCountry, FieldRegion, FieldCity,
	FieldBrowser, FieldOS, FieldScreen,
}

// Site is a website whose activity is collected.
type Site struct {
	ID string
	// Origins are the exact origins ("https://example.org") pages of the
	// site are served from; collect answers CORS only for them and refuses
	// events whose page URL or Origin header is elsewhere.
	Origins []string
	// Location is the site's time zone: days (salts, rollups, reports)
	// are the site's local days.
	Location *time.Location
}

// Config is what the policy in force says about collection. The app builds
// it from the policy with FromPolicy; tests build it directly.
type Config struct {
	Sites []Site
	// Fields are the policy fields that may be stored (see the Field
	// constants); everything else is dropped before storage.
	Fields map[string]bool
	// LinkToAccount links a signed-in member's events to their account
	// (the policy's activity category says link_to_account).
	LinkToAccount bool
	// Granularity is the finest location derived from an IP ("" means
	// country).
	Granularity policy.Granularity
	// SearchParam is the query parameter of page URLs that holds search
	// terms ("q" when empty).
	SearchParam string
	// PolicyVersion is the number of the published policy version events
	// are collected under (recorded on linked events).
	PolicyVersion int
}

var siteIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// validate checks the configuration and returns a copy with defaults.
func (c Config) validate() (Config, error) {
	if c.SearchParam == "" {
		c.SearchParam = "q"
	}
	if c.Granularity == "" {
		c.Granularity = policy.GranularityCountry
	}
	switch c.Granularity {
	case policy.GranularityNone, policy.GranularityCountry, policy.GranularityRegion, policy.GranularityCity:
	default:
		return c, fmt.Errorf("activity: unknown location granularity %q", c.Granularity)
	}
	fields := map[string]bool{}
	known := map[string]bool{}
	for _, f := range AllFields {
		known[f] = true
	}
	for f, on := range c.Fields {
		if on && known[f] {
			fields[f] = true
		}
	}
	// Location finer than the granularity is never derived, whatever the
	// fields say.
	if !c.Granularity.Allows(policy.GranularityCity) {
		delete(fields, FieldCity)
	}
	if !c.Granularity.Allows(policy.GranularityRegion) {
		delete(fields, FieldRegion)
	}
	if !c.Granularity.Allows(policy.GranularityCountry) {
		delete(fields, FieldCountry)
	}
	c.Fields = fields
	seen := map[string]bool{}
	sites := make([]Site, 0, len(c.Sites))
	for _, s := range c.Sites {
		if !siteIDRE.MatchString(s.ID) {
			return c, fmt.Errorf("activity: site id %q must be 1-64 lower-case letters, digits, - or _", s.ID)
		}
		if seen[s.ID] {
			return c, fmt.Errorf("activity: site %q declared twice", s.ID)
		}
		seen[s.ID] = true
		if s.Location == nil {
			s.Location = time.UTC
		}
		origins := make([]string, 0, len(s.Origins))
		for _, o := range s.Origins {
			norm, err := normalizeOrigin(o)
			if err != nil {
				return c, fmt.Errorf("activity: site %s: %w", s.ID, err)
			}
			origins = append(origins, norm)
		}
		s.Origins = origins
		sites = append(sites, s)
	}
	c.Sites = sites
	return c, nil
}

// normalizeOrigin turns "https://Example.org/" into "https://example.org".
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("origin %q must be scheme://host[:port]", o)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// Site returns the configured site with the given id.
func (c *Collector) Site(id string) (Site, bool) {
	for _, s := range c.cfg.Sites {
		if s.ID == id {
			return s, true
		}
	}
	return Site{}, false
}

// Sites returns every configured site.
func (c *Collector) Sites() []Site { return c.cfg.Sites }

// AllowsOrigin reports whether origin (an Origin header) may send events
// for the site: the collect endpoint's CORS answer.
func (s Site) AllowsOrigin(origin string) bool {
	if s.allows(origin) {
		return true // the common case: already in normal form
	}
	o, err := normalizeOrigin(origin)
	return err == nil && s.allows(o)
}

func (s Site) allows(origin string) bool {
	for _, allowed := range s.Origins {
		if allowed == origin {
			return true
		}
	}
	return false
}

// Records reports whether the policy lets the collector store a field.
func (c *Collector) Records(field string) bool { return c.cfg.Fields[field] }
