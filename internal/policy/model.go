package policy

import "slices"

// The types below are the policy file's schema. Field tags name the YAML
// keys; the strict decoder refuses any key not listed here. A tag option
// "keyed" marks a slice written in YAML as a mapping from id to entry, which
// keeps the declaration order the notice is rendered in.

// Controller is who is responsible for the data (GDPR Art. 4(7)).
type Controller struct {
	Name      string    `yaml:"name" json:"name"`
	Contact   string    `yaml:"contact" json:"contact"` // an email address for privacy matters
	Address   string    `yaml:"address" json:"address,omitempty"`
	Website   string    `yaml:"website" json:"website,omitempty"`
	DPO       string    `yaml:"dpo" json:"dpo,omitempty"` // the data protection officer, if any
	Authority Authority `yaml:"authority" json:"authority"`
}

// Authority is the supervisory authority a subject may complain to.
type Authority struct {
	Name      string `yaml:"name" json:"name"`
	URL       string `yaml:"url" json:"url,omitempty"`
	Complaint string `yaml:"complaint" json:"complaint,omitempty"` // how to lodge a complaint
}

// AgeCheck says how sign-up establishes the minimum age.
type AgeCheck string

const (
	AgeDateOfBirth  AgeCheck = "date_of_birth" // the date of birth is asked and stored
	AgeConfirmation AgeCheck = "confirmation"  // the person confirms their age; nothing is stored
	AgeNone         AgeCheck = "none"
)

// Registration declares what sign-up accepts.
type Registration struct {
	Fields   []string `yaml:"fields" json:"fields"`
	Required []string `yaml:"required" json:"required"`
	AgeCheck AgeCheck `yaml:"age_check" json:"age_check"`
}

// Granularity is how precisely a location may be known.
type Granularity string

const (
	GranularityNone    Granularity = "none"
	GranularityCountry Granularity = "country"
	GranularityRegion  Granularity = "region"
	GranularityCity    Granularity = "city"
)

// rank orders granularities from coarse (0) to fine; unknown values rank
// as the finest so a typo never loosens a check of what is declared or
// asked for. An allowance is read through Allows instead.
func (g Granularity) rank() int {
	switch g {
	case GranularityNone:
		return 0
	case GranularityCountry, "":
		return 1
	case GranularityRegion:
		return 2
	default:
		return 3
	}
}

// Allows reports whether a location as fine as level may be kept where g
// is the finest allowed ("" allows country, the default). Unknown values
// allow nothing and are allowed nowhere: read as the finest, as rank reads
// them, an unknown allowance would let city through.
func (g Granularity) Allows(level Granularity) bool {
	if (!g.known() && g != "") || !level.known() {
		return false
	}
	return level.rank() <= g.rank()
}

func (g Granularity) known() bool {
	switch g {
	case GranularityNone, GranularityCountry, GranularityRegion, GranularityCity:
		return true
	}
	return false
}

// Category is a kind of personal data and the fields it groups.
type Category struct {
	ID          string   `yaml:"-" json:"id"`
	Description string   `yaml:"description" json:"description"`
	Fields      []string `yaml:"fields" json:"fields"`
	// SelfEditable fields the subject may correct at once (Art. 16);
	// correcting any other field is a reviewed request.
	SelfEditable []string `yaml:"self_editable" json:"self_editable"`
	// Sensitive fields are encrypted with a key per subject and category,
	// destroyed on erasure.
	Sensitive []string `yaml:"sensitive" json:"sensitive"`
	// Payment data may be read only by the purposes payment and
	// subject-request.
	Payment bool `yaml:"payment" json:"payment"`
	// LegalObligation, when set, says in words which law obliges the
	// controller to keep the category's data (invoices under tax law):
	// it survives an erasure request (GDPR Art. 17(3)(b)), and the subject
	// is told these words.
	LegalObligation string `yaml:"legal_obligation" json:"legal_obligation,omitempty"`
	// Source lists where the data comes from: subject, form,
	// import:NAME, third-party, public, observed, ip, derived.
	Source []string `yaml:"source" json:"source"`
	// LinkToAccount, for activity, says whether events of a signed-in
	// member are linked to their account (and so become their personal
	// data) or stay anonymous.
	LinkToAccount bool `yaml:"link_to_account" json:"link_to_account"`
	// Granularity, for IP-derived location, is the finest level kept.
	Granularity Granularity `yaml:"granularity" json:"granularity,omitempty"`
	// Retention comes from the policy's retention section.
	Retention Retention `yaml:"-" json:"retention"`
}

// Basis is a lawful basis for processing (GDPR Art. 6(1)).
type Basis string

const (
	BasisConsent            Basis = "consent"
	BasisContract           Basis = "contract"
	BasisLegitimateInterest Basis = "legitimate-interest"
	BasisLegalObligation    Basis = "legal-obligation"
	BasisVitalInterest      Basis = "vital-interest"
	BasisPublicTask         Basis = "public-task"
	// BasisAsCollected is the basis of the built-in purpose storage only:
	// data is kept under the basis it was collected for. A policy cannot
	// declare it.
	BasisAsCollected Basis = "as-collected"
)

// protection ranks a basis by how much control it leaves the subject:
// consent (they decide and may withdraw) ranks highest, legitimate
// interest (the controller decides; the subject may only object) lowest.
// A change to a lower rank is a significant change of the policy.
func (b Basis) protection() int {
	switch b {
	case BasisConsent:
		return 5
	case BasisContract:
		return 4
	case BasisLegalObligation, BasisVitalInterest:
		return 3
	case BasisPublicTask:
		return 2
	default:
		return 1
	}
}

// Purpose is a use of personal data, with its basis and the categories it
// may read.
type Purpose struct {
	ID          string   `yaml:"-" json:"id"`
	Description string   `yaml:"description" json:"description"`
	Basis       Basis    `yaml:"basis" json:"basis"`
	Uses        []string `yaml:"uses" json:"uses"`
	// DirectMarketing purposes stop at once on an objection or marketing
	// suppression (Art. 21(3)).
	DirectMarketing bool `yaml:"direct_marketing" json:"direct_marketing"`
	// SaleOrShare purposes pass data to others for their own use; a GPC
	// signal opts out of them.
	SaleOrShare bool `yaml:"sale_or_share" json:"sale_or_share"`
	// ThirdPartyMarketing purposes market other companies' products; a GPC
	// signal opts out of them.
	ThirdPartyMarketing bool   `yaml:"third_party_marketing" json:"third_party_marketing"`
	Notice              string `yaml:"notice" json:"notice,omitempty"`     // consent text shown
	Interest            string `yaml:"interest" json:"interest,omitempty"` // the legitimate interest
	AutomatedDecisions  bool   `yaml:"automated_decisions" json:"automated_decisions"`
	// Builtin purposes exist in every policy and cannot be declared.
	Builtin bool `yaml:"-" json:"builtin"`
}

// Role is what a recipient is to the controller.
type Role string

const (
	RoleProcessor  Role = "processor"  // acts on the controller's instructions
	RolePartner    Role = "partner"    // a third party receiving data for its own part of a service
	RoleAuthority  Role = "authority"  // courts, law enforcement, regulators
	RoleAcquirer   Role = "acquirer"   // a buyer in a merger or sale
	RoleController Role = "controller" // an independent controller
)

// Safeguard protects data transferred abroad (GDPR Chapter V).
type Safeguard string

const (
	SafeguardAdequacy Safeguard = "adequacy"
	SafeguardSCC      Safeguard = "SCC"
	SafeguardBCR      Safeguard = "BCR"
	SafeguardConsent  Safeguard = "consent"
	SafeguardNone     Safeguard = "none"
)

// strength orders safeguards; a change to a weaker one is significant.
func (s Safeguard) strength() int {
	switch s {
	case SafeguardAdequacy:
		return 4
	case SafeguardBCR, SafeguardSCC:
		return 3
	case SafeguardConsent:
		return 2
	default:
		return 0
	}
}

// Recipient is someone personal data is disclosed to.
type Recipient struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	Role Role   `yaml:"role" json:"role"`
	// Country is an ISO 3166-1 alpha-2 code; "ZZ" means not known in
	// advance (an acquirer, or authorities wherever the law applies).
	Country    string    `yaml:"country" json:"country"`
	Purposes   []string  `yaml:"purposes" json:"purposes"`
	Categories []string  `yaml:"categories" json:"categories"`
	Safeguard  Safeguard `yaml:"safeguard" json:"safeguard"`
	Note       string    `yaml:"note" json:"note,omitempty"`
	// Client, when set, makes the recipient an application that signs
	// people in with Steward as its OpenID provider (see clients.go).
	Client *RecipientClient `yaml:"client" json:"client,omitempty"`
	// Fields, when listed, are the only fields of its categories it may
	// receive (a partner gets the email, never the password hash of the
	// same category); empty, any field of its categories.
	Fields []string `yaml:"fields" json:"fields,omitempty"`
	// Webhook is where disclosures and rights events (Art. 19) are
	// delivered; nil when the recipient is told by hand or pulls.
	Webhook *RecipientWebhook `yaml:"webhook" json:"-"`
	// Pull lets the recipient fetch what was disclosed to it with its own
	// API key.
	Pull *RecipientPull `yaml:"pull" json:"-"`
}

// RecipientWebhook is a recipient's delivery endpoint. The signing secret
// is not in the policy: SecretEnv names the environment variable that
// holds it (Standard Webhooks: "whsec_" and base64, or raw bytes).
type RecipientWebhook struct {
	URL       string `yaml:"url" json:"url"`
	SecretEnv string `yaml:"secret_env" json:"-"`
}

// RecipientPull names the environment variable holding the API key a
// recipient pulls its disclosures with.
type RecipientPull struct {
	KeyEnv string `yaml:"key_env" json:"-"`
}

// MayReceiveField reports whether the recipient may receive field, whose
// category is category: the category must be one of its own, and the
// field among its fields when it lists any.
func (r *Recipient) MayReceiveField(field, category string) bool {
	if !slices.Contains(r.Categories, category) {
		return false
	}
	return len(r.Fields) == 0 || slices.Contains(r.Fields, field)
}

// Transfer is a country outside the controller's where data is stored or
// processed.
type Transfer struct {
	To        string    `yaml:"to" json:"to"`
	Safeguard Safeguard `yaml:"safeguard" json:"safeguard"`
	Stores    bool      `yaml:"stores" json:"stores"`
	Processes bool      `yaml:"processes" json:"processes"`
	Note      string    `yaml:"note" json:"note,omitempty"`
}

// Store is a system data lives in (logs, databases, analytics).
type Store struct {
	ID          string   `yaml:"id" json:"id"`
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Categories  []string `yaml:"categories" json:"categories"`
}

// Right is one data-subject right the policy offers. A right absent from
// the policy is not offered.
type Right struct {
	Note string `yaml:"note" json:"note,omitempty"`
}

// Exemption is a reason data survives an erasure request (Art. 17(3)).
type Exemption string

const (
	ExemptArchive         Exemption = "archive"          // Art. 89 archiving in the public interest
	ExemptLegalObligation Exemption = "legal-obligation" // e.g. invoices, proof of consent
	ExemptLegalHold       Exemption = "legal-hold"       // a hold staff place on a subject
	ExemptLegalClaims     Exemption = "legal-claims"
	ExemptExpression      Exemption = "freedom-of-expression"
	ExemptPublicInterest  Exemption = "public-interest"
)

// ErasureScope is what an erasure request may cover.
type ErasureScope string

const (
	ScopeAccount  ErasureScope = "account"
	ScopeCategory ErasureScope = "category"
	ScopeItem     ErasureScope = "item"
	ScopeContent  ErasureScope = "content"
)

// Erasure is the right to erasure with its exemptions.
type Erasure struct {
	Note       string         `yaml:"note" json:"note,omitempty"`
	Exemptions []Exemption    `yaml:"exemptions" json:"exemptions"`
	Scopes     []ErasureScope `yaml:"scopes" json:"scopes"` // empty: every scope
}

// Rights lists the rights offered.
type Rights struct {
	Access        *Right   `yaml:"access" json:"access,omitempty"`
	Portability   *Right   `yaml:"portability" json:"portability,omitempty"`
	Rectification *Right   `yaml:"rectification" json:"rectification,omitempty"`
	Restriction   *Right   `yaml:"restriction" json:"restriction,omitempty"`
	Objection     *Right   `yaml:"objection" json:"objection,omitempty"`
	Erasure       *Erasure `yaml:"erasure" json:"erasure,omitempty"`
	// HowToExercise tells the subject where to go (the privacy centre, an
	// address); the notice always adds the controller's contact.
	HowToExercise string `yaml:"how_to_exercise" json:"how_to_exercise,omitempty"`
}

// Verification says how identity is proved before a rights request is
// answered.
type Verification struct {
	Members     string `yaml:"members" json:"members"`   // reauthenticate
	Others      string `yaml:"others" json:"others"`     // email-code
	CodeTTL     string `yaml:"code_ttl" json:"code_ttl"` // e.g. 30m
	MaxAttempts int    `yaml:"max_attempts" json:"max_attempts"`
}

// Changes says how policy changes are announced.
type Changes struct {
	Notify string `yaml:"notify" json:"notify"` // email, notice, email-and-notice
	// SignificantRequiresConsent: a change that reduces rights applies to a
	// member only once they accept it; until then the stricter of the two
	// versions applies to them.
	SignificantRequiresConsent bool `yaml:"significant_requires_consent" json:"significant_requires_consent"`
	NoticeDays                 int  `yaml:"notice_days" json:"notice_days"`
}

// CookieKind classifies a cookie.
type CookieKind string

const (
	CookieFunctional  CookieKind = "functional"
	CookieAnalytics   CookieKind = "analytics"
	CookieAdvertising CookieKind = "advertising"
	CookieTracking    CookieKind = "tracking"
)

// Cookie is a cookie the site sets or lets a partner set.
type Cookie struct {
	Name       string     `yaml:"name" json:"name"`
	Purpose    string     `yaml:"purpose" json:"purpose"`
	Lifetime   string     `yaml:"lifetime" json:"lifetime"` // "session" or a period such as "30 days"
	Kind       CookieKind `yaml:"kind" json:"kind"`
	FirstParty bool       `yaml:"first_party" json:"first_party"`
	SetBy      string     `yaml:"set_by" json:"set_by"` // steward or partner
	HTTPOnly   bool       `yaml:"http_only" json:"http_only"`
	Note       string     `yaml:"note" json:"note,omitempty"`
}

// Promises are machine-readable promises: Check refuses a policy that
// contradicts one, and the code relies on them.
type Promises struct {
	NoTrackingCookies        bool `yaml:"no_tracking_cookies" json:"no_tracking_cookies"`
	NoSale                   bool `yaml:"no_sale" json:"no_sale"`
	NoSharingWithoutConsent  bool `yaml:"no_sharing_without_consent" json:"no_sharing_without_consent"`
	MarketingOnlyWithConsent bool `yaml:"marketing_only_with_consent" json:"marketing_only_with_consent"`
	LocationFromIPOnly       bool `yaml:"location_from_ip_only" json:"location_from_ip_only"`
	ActivityNotLinked        bool `yaml:"activity_not_linked" json:"activity_not_linked"`
	NoAutomatedDecisions     bool `yaml:"no_automated_decisions" json:"no_automated_decisions"`
	SharedReportsAnonymised  bool `yaml:"shared_reports_anonymised" json:"shared_reports_anonymised"`
}

// Statement is a promise software cannot keep (security of transmission,
// third-party sites); the notice states it all the same.
type Statement struct {
	ID    string `yaml:"id" json:"id,omitempty"`
	Title string `yaml:"title" json:"title,omitempty"`
	Text  string `yaml:"text" json:"text"`
}

// Analytics configures cookieless analytics and anonymised sharing.
type Analytics struct {
	SearchParam         string      `yaml:"search_param" json:"search_param"`
	KAnonymity          int         `yaml:"k_anonymity" json:"k_anonymity"`
	DPEpsilon           float64     `yaml:"dp_epsilon" json:"dp_epsilon"`
	PublicTrends        bool        `yaml:"public_trends" json:"public_trends"`
	LocationGranularity Granularity `yaml:"location_granularity" json:"location_granularity"`
}

// Site is a website whose activity Steward collects.
type Site struct {
	ID       string   `yaml:"id" json:"id"`
	Name     string   `yaml:"name" json:"name,omitempty"`
	Origins  []string `yaml:"origins" json:"origins"`
	TimeZone string   `yaml:"time_zone" json:"time_zone"`
}

// Newsletter is a mailing list.
type Newsletter struct {
	ID          string `yaml:"id" json:"id"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	Purpose     string `yaml:"purpose" json:"purpose"`
	DoubleOptIn bool   `yaml:"double_opt_in" json:"double_opt_in"`
	TrackOpens  bool   `yaml:"track_opens" json:"track_opens"`
	TrackClicks bool   `yaml:"track_clicks" json:"track_clicks"`
}

// IdentityProvider is an OpenID provider people may sign in with, and
// the claims a sign-in may import from it. The client secret is not in
// the policy: SecretEnv names the environment variable that holds it.
type IdentityProvider struct {
	ID        string   `yaml:"id" json:"id"`
	Name      string   `yaml:"name" json:"name"`
	Issuer    string   `yaml:"issuer" json:"issuer"`
	ClientID  string   `yaml:"client_id" json:"client_id"`
	SecretEnv string   `yaml:"secret_env" json:"-"`
	Claims    []string `yaml:"claims" json:"claims"`
}

// Imports says in words what a sign-in with the provider imports: "your
// name and your email address".
func (ip IdentityProvider) Imports() string { return andList(fieldLabels(ip.Claims)) }

// ImportableClaims are the fields a sign-in with another service can
// import, each from the standard claim of the same name (OpenID Connect
// Core §5.1).
func ImportableClaims() []string { return []string{"name", "email", "picture"} }

// StaffRole is what one staff role may do with personal data: the
// purposes its screens may name at the door. A screen that names a purpose
// its role lacks is refused and audited, so a support screen cannot read
// what only payment may.
type StaffRole struct {
	ID          string   `yaml:"-" json:"id"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Purposes    []string `yaml:"purposes" json:"purposes"`
}

// document is the file as decoded; Parse turns it into a Policy.
type document struct {
	Controller   Controller            `yaml:"controller"`
	Version      string                `yaml:"version"`
	Title        string                `yaml:"title"`
	Summary      string                `yaml:"summary"`
	MinimumAge   int                   `yaml:"minimum_age"`
	Registration Registration          `yaml:"registration"`
	Categories   []*Category           `yaml:"categories,keyed"`
	Purposes     []*Purpose            `yaml:"purposes,keyed"`
	Retention    map[string]*Retention `yaml:"retention"`
	Recipients   []*Recipient          `yaml:"recipients"`
	Transfers    []Transfer            `yaml:"transfers"`
	Stores       []Store               `yaml:"stores"`
	Rights       Rights                `yaml:"rights"`
	Verification Verification          `yaml:"verification"`
	Changes      Changes               `yaml:"changes"`
	Cookies      []Cookie              `yaml:"cookies"`
	Promises     Promises              `yaml:"promises"`
	Statements   []Statement           `yaml:"statements"`
	Analytics    Analytics             `yaml:"analytics"`
	Sites        []Site                `yaml:"sites"`
	Newsletters  []Newsletter          `yaml:"newsletters"`
	Staff        []*StaffRole          `yaml:"staff,keyed"`
	// IdentityProviders are the services people may sign in with.
	IdentityProviders []IdentityProvider `yaml:"identity_providers"`
}
