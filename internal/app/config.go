package app

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
)

// Config is everything a Steward process is told from outside. Every flag
// has an environment variable; a flag given on the command line wins.
type Config struct {
	Addr           string
	DataDir        string
	PolicyPath     string // "" means the embedded examples/mixi.yaml
	DatabaseURL    string // "" means SQLite in DataDir
	SMTPURL        string
	MailFrom       string
	KeyFile        string
	TrustedProxies []netip.Prefix
	BaseURL        string
	Dev            bool
	TLSCert        string
	TLSKey         string
	GeoIPPath      string // an MMDB file for region and city ("" = country only)
	// SQLiteSynchronous is SQLite's synchronous pragma ("" = NORMAL), from
	// STEWARD_SQLITE_SYNCHRONOUS only: FULL for power-loss durability.
	SQLiteSynchronous string
	MetricsToken      string // lets scrapers outside loopback and the trusted proxies read /metrics
	// BlobURL is where uploads are kept ("" = the data directory); the S3
	// credentials come from STEWARD_S3_ACCESS_KEY and STEWARD_S3_SECRET_KEY.
	BlobURL                  string
	S3AccessKey, S3SecretKey string
	// PaymentSecret signs the payment processor's webhook deliveries
	// (STEWARD_PAYMENT_WEBHOOK_SECRET, never a flag: flags show in ps).
	PaymentSecret string
	// MaxPhotoMB and MaxVideoMB bound uploads (0: content's defaults,
	// 25 MB and 2048 MB).
	MaxPhotoMB, MaxVideoMB int64
	// SupportAddress is the support desk's mail address; replies to its
	// answers go to its "+token" form.
	SupportAddress string
	// SMTPListen is where the desk receives mail over SMTP ("" = it does
	// not); SMTPTrustedAuthServ is the authserv-id of the relay in front
	// whose Authentication-Results header is believed.
	SMTPListen, SMTPTrustedAuthServ string
	// MaxAttachmentMB and MaxRecordingMB bound a support request's files
	// (0: the desk's defaults, 25 MB and 200 MB).
	MaxAttachmentMB, MaxRecordingMB int64
	// DebugAddr serves net/http/pprof on a loopback address ("" = off).
	DebugAddr string
}

type flagSpec struct {
	name, env, def, usage string
	bool                  bool
}

var storageFlags = []flagSpec{
	{name: "data-dir", env: "STEWARD_DATA_DIR", def: "./steward-data", usage: "directory for the embedded SQLite database and development key"},
	{name: "database-url", env: "STEWARD_DATABASE_URL", usage: "postgres://… for PostgreSQL; empty for SQLite in the data directory"},
	{name: "policy", env: "STEWARD_POLICY", usage: "policy YAML file (default: the embedded examples/mixi.yaml)"},
	{name: "key-file", env: "STEWARD_KEY_FILE", usage: "file holding the 32-byte master key (or set STEWARD_MASTER_KEY to its base64)"},
	{name: "base-url", env: "STEWARD_BASE_URL", usage: "public URL used in mail links (default http://ADDR)"},
	{name: "blob-url", env: "STEWARD_BLOB_URL", usage: "where uploads are kept: empty for the data directory, or s3://host:port/bucket (?tls=false for a local gateway); credentials from STEWARD_S3_ACCESS_KEY and STEWARD_S3_SECRET_KEY"},
	{name: "dev", env: "STEWARD_DEV", bool: true, usage: "development mode: a master key may be created in the data directory, payment endpoints accept plain HTTP, the demo site is served"},
}

var serveFlags = []flagSpec{
	{name: "addr", env: "STEWARD_ADDR", def: "127.0.0.1:8080", usage: "address to listen on"},
	{name: "smtp-url", env: "STEWARD_SMTP_URL", usage: "smtp://user:pass@host:port (smtps:// for implicit TLS; ?tls=none for a plain test server); empty keeps mail in the outbox for /admin/outbox"},
	{name: "mail-from", env: "STEWARD_MAIL_FROM", def: "Steward <steward@localhost>", usage: "From address of outgoing mail"},
	{name: "trusted-proxies", env: "STEWARD_TRUSTED_PROXIES", usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-* headers are believed"},
	{name: "tls-cert", env: "STEWARD_TLS_CERT", usage: "TLS certificate file (serve HTTPS)"},
	{name: "tls-key", env: "STEWARD_TLS_KEY", usage: "TLS key file"},
	{name: "metrics-token", env: "STEWARD_METRICS_TOKEN", usage: "Bearer token for /metrics from outside loopback and the trusted proxies (prefer the environment variable: flags show in ps)"},
	{name: "max-photo-mb", env: "STEWARD_MAX_PHOTO_MB", usage: "largest photo a member may upload, in MB (default 25)"},
	{name: "max-video-mb", env: "STEWARD_MAX_VIDEO_MB", usage: "largest video a member may upload, in MB (default 2048)"},
	{name: "support-address", env: "STEWARD_SUPPORT_ADDRESS", usage: "the support desk's mail address (support@example.org): answers are mailed with a reply address of its +token form, and mail to it opens requests"},
	{name: "smtp-listen", env: "STEWARD_SMTP_LISTEN", usage: "host:port to receive the support desk's mail on over SMTP, from the relay or MX in front (off when empty; needs --support-address)"},
	{name: "smtp-trusted-authserv", env: "STEWARD_SMTP_TRUSTED_AUTHSERV", usage: "authserv-id of the relay in front whose Authentication-Results (SPF, DKIM, DMARC) are recorded with inbound mail"},
	{name: "max-attachment-mb", env: "STEWARD_MAX_ATTACHMENT_MB", usage: "largest file attached to a support request, in MB (default 25)"},
	{name: "max-recording-mb", env: "STEWARD_MAX_RECORDING_MB", usage: "largest recorded call attached to a support request, in MB (default 200)"},
	{name: "debug-addr", env: "STEWARD_DEBUG_ADDR", usage: "loopback host:port to serve Go's profiler on (/debug/pprof/; off when empty), e.g. 127.0.0.1:6060"},
	{name: "geoip-mmdb", env: "STEWARD_GEOIP_MMDB", usage: "MMDB file (GeoLite2/GeoIP2 City or compatible) for region and city, where the policy allows them; the country comes from the embedded IP2Location LITE table"},
}

// Flags defines the storage flags (and, when serve is true, the server
// flags) on fs. Call Parse to read them with their environment variables.
type Flags struct {
	fs     *flag.FlagSet
	specs  []flagSpec
	values map[string]*string
	bools  map[string]*bool
}

// NewFlags registers the flags of a subcommand on fs.
func NewFlags(fs *flag.FlagSet, serve bool) *Flags {
	f := &Flags{fs: fs, values: map[string]*string{}, bools: map[string]*bool{}}
	f.specs = append(f.specs, storageFlags...)
	if serve {
		f.specs = append(f.specs, serveFlags...)
	}
	for _, s := range f.specs {
		usage := s.usage + " [$" + s.env + "]"
		if s.bool {
			f.bools[s.name] = fs.Bool(s.name, false, usage)
		} else {
			f.values[s.name] = fs.String(s.name, s.def, usage)
		}
	}
	return f
}

// Config resolves the parsed flags: a flag set on the command line wins,
// then its environment variable, then the default.
func (f *Flags) Config(getenv func(string) string) (Config, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	str := func(name string) string {
		for _, s := range f.specs {
			if s.name != name {
				continue
			}
			if p, ok := f.values[name]; ok {
				if set[name] {
					return *p
				}
				if v := getenv(s.env); v != "" {
					return v
				}
				return *p
			}
		}
		return ""
	}
	boolean := func(name string) (bool, error) {
		for _, s := range f.specs {
			if s.name != name {
				continue
			}
			p, ok := f.bools[name]
			if !ok {
				return false, nil
			}
			if set[name] {
				return *p, nil
			}
			if v := getenv(s.env); v != "" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return false, fmt.Errorf("%s: want true or false, got %q", s.env, v)
				}
				return b, nil
			}
		}
		return false, nil
	}
	var c Config
	var err error
	c.Addr = str("addr")
	c.DataDir = str("data-dir")
	c.PolicyPath = str("policy")
	c.DatabaseURL = str("database-url")
	c.SMTPURL = str("smtp-url")
	c.MailFrom = str("mail-from")
	c.KeyFile = str("key-file")
	c.BaseURL = strings.TrimRight(str("base-url"), "/")
	c.TLSCert = str("tls-cert")
	c.TLSKey = str("tls-key")
	c.GeoIPPath = str("geoip-mmdb")
	c.SQLiteSynchronous = getenv("STEWARD_SQLITE_SYNCHRONOUS")
	c.MetricsToken = str("metrics-token")
	c.BlobURL = str("blob-url")
	for _, lim := range []struct {
		name string
		to   *int64
	}{{"max-photo-mb", &c.MaxPhotoMB}, {"max-video-mb", &c.MaxVideoMB}, {"max-attachment-mb", &c.MaxAttachmentMB}, {"max-recording-mb", &c.MaxRecordingMB}} {
		if v := str(lim.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || n > 1<<20 {
				return c, fmt.Errorf("--%s: want a number of megabytes, got %q", lim.name, v)
			}
			*lim.to = n
		}
	}
	c.S3AccessKey, c.S3SecretKey = getenv("STEWARD_S3_ACCESS_KEY"), getenv("STEWARD_S3_SECRET_KEY")
	c.PaymentSecret = getenv("STEWARD_PAYMENT_WEBHOOK_SECRET")
	c.SupportAddress = strings.TrimSpace(str("support-address"))
	c.SMTPListen = str("smtp-listen")
	if c.DebugAddr = str("debug-addr"); c.DebugAddr != "" {
		host, _, err := net.SplitHostPort(c.DebugAddr)
		ip, perr := netip.ParseAddr(host)
		if err != nil || (host != "localhost" && (perr != nil || !ip.IsLoopback())) {
			return c, fmt.Errorf("--debug-addr: want a loopback address such as 127.0.0.1:6060 (the profiler shows memory), got %q", c.DebugAddr)
		}
	}
	c.SMTPTrustedAuthServ = str("smtp-trusted-authserv")
	if c.SupportAddress != "" {
		if a, err := mail.ParseAddress(c.SupportAddress); err != nil || a.Name != "" || a.Address != c.SupportAddress || strings.Contains(a.Address, "+") {
			return c, fmt.Errorf("--support-address: want a plain address such as support@example.org, got %q", c.SupportAddress)
		}
	}
	if c.SMTPListen != "" {
		if c.SupportAddress == "" {
			return c, errors.New("--smtp-listen needs --support-address: the listener takes mail for that address only")
		}
		if _, _, err := net.SplitHostPort(c.SMTPListen); err != nil {
			return c, fmt.Errorf("--smtp-listen: want host:port, got %q", c.SMTPListen)
		}
	}
	if c.Dev, err = boolean("dev"); err != nil {
		return c, err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together")
	}
	if tp := str("trusted-proxies"); tp != "" {
		for _, part := range strings.Split(tp, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil {
					return c, fmt.Errorf("--trusted-proxies: %q is not a CIDR or address", part)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
	}
	if c.BaseURL == "" {
		scheme, addr := "http", c.Addr
		if c.TLSCert != "" {
			scheme = "https"
		}
		if addr == "" {
			addr = "127.0.0.1:8080" // commands that do not serve still write links in mail
		}
		if strings.HasPrefix(addr, ":") {
			addr = "localhost" + addr // listening on every interface
		}
		c.BaseURL = scheme + "://" + addr
	}
	return c, nil
}

// LoopbackOnly reports whether the server listens on a loopback address
// only, which is when development conveniences are safe.
func (c Config) LoopbackOnly() bool {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
