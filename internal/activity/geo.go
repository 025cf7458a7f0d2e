package activity

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/phuslu/iploc"

	"steward/internal/policy"
)

// IP2LocationAttribution is the notice the IP-to-country data's licence
// (IP2Location LITE, embedded by github.com/phuslu/iploc) asks for, in the
// privacy notice and the README.
const IP2LocationAttribution = "This site or product includes IP2Location LITE data available from https://lite.ip2location.com."

// Location is where an IP address is, at most as precisely as the policy
// allows. Empty fields are unknown or not allowed.
type Location struct {
	Country string // ISO 3166-1 alpha-2
	Region  string // the first subdivision's name
	City    string
}

// Geo turns an IP address into a Location. The country comes from the
// embedded IP2Location LITE table; region and city only from an MMDB file
// the operator supplies (a GeoLite2/GeoIP2 City database or compatible).
// The IP is only looked up, never kept.
type Geo struct {
	mmdb *maxminddb.Reader
}

// NewGeo returns a Geo that uses the embedded country table only.
func NewGeo() *Geo { return &Geo{} }

// OpenGeo returns a Geo that also reads region and city from the MMDB
// file at path (the country too, where the file has one).
func OpenGeo(path string) (*Geo, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("activity: open MMDB %s: %w", path, err)
	}
	return &Geo{mmdb: r}, nil
}

// OpenGeoBytes is OpenGeo for a database already in memory.
func OpenGeoBytes(b []byte) (*Geo, error) {
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("activity: open MMDB: %w", err)
	}
	return &Geo{mmdb: r}, nil
}

// HasCities reports whether region and city can be known.
func (g *Geo) HasCities() bool { return g != nil && g.mmdb != nil }

// Close releases the MMDB file.
func (g *Geo) Close() error {
	if g == nil || g.mmdb == nil {
		return nil
	}
	return g.mmdb.Close()
}

// BuildTime is when the MMDB file was built (zero without one).
func (g *Geo) BuildTime() time.Time {
	if !g.HasCities() {
		return time.Time{}
	}
	return g.mmdb.Metadata.BuildTime()
}

// cityRecord is the part of a GeoIP2/GeoLite2 City record we read.
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
}

// Locate returns the location of ip at granularity g.
func (g *Geo) Locate(ip netip.Addr, gran policy.Granularity) Location {
	var loc Location
	if !gran.Allows(policy.GranularityCountry) || !ip.IsValid() {
		return loc
	}
	ip = ip.Unmap()
	if ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
		return loc
	}
	if c := iploc.IPCountry(ip); c != "ZZ" && len(c) == 2 {
		loc.Country = c
	}
	if g.HasCities() && gran.Allows(policy.GranularityRegion) {
		var rec cityRecord
		if err := g.mmdb.Lookup(ip).Decode(&rec); err == nil {
			if rec.Country.ISOCode != "" {
				loc.Country = rec.Country.ISOCode
			}
			if len(rec.Subdivisions) > 0 {
				loc.Region = clean(rec.Subdivisions[0].Names["en"], 100)
			}
			if gran.Allows(policy.GranularityCity) {
				loc.City = clean(rec.City.Names["en"], 100)
			}
		}
	}
	return loc
}
