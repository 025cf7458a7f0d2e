package policy

// KnownFields returns every field name Steward can store, the shared
// vocabulary between the registry's columns and policies. A policy may
// group them into categories as it likes, but it cannot declare a field
// Steward has no column for: such a field would be a promise about data
// nothing collects, and usually a typo.
func KnownFields() []string {
	return []string{
		// identity
		"name", "email", "password", "phone", "company", "organisation", "billing_address",
		"location", "date_of_birth", "picture", "session",
		// payment
		"card_token", "card_brand", "card_last4", "invoice",
		// activity
		"page", "referrer", "search_terms", "view_time", "outbound_link", "asset_interaction", "event",
		// IP-derived location
		"country", "region", "city",
		// device
		"browser", "os", "screen",
		// content
		"comment", "post", "photo", "video",
		// communications and support
		"mail", "support_message", "call_recording", "support_request",
		// consent and newsletters
		"consent", "subscription",
	}
}

// FieldLabel is the field in words, for the notice.
func FieldLabel(field string) string {
	switch field {
	case "name":
		return "your name"
	case "email":
		return "your email address"
	case "password":
		return "your password (stored only as a one-way hash)"
	case "phone":
		return "your phone number"
	case "company":
		return "your company name"
	case "organisation":
		return "your organisation"
	case "billing_address":
		return "your billing address"
	case "location":
		return "the location you give us (country or city)"
	case "date_of_birth":
		return "your date of birth"
	case "picture":
		return "your profile picture"
	case "session":
		return "your sign-in sessions (when created and last used, browser family, a shortened network address)"
	case "card_token":
		return "a payment processor's token for your card (never the card number)"
	case "card_brand":
		return "your card's brand"
	case "card_last4":
		return "the last four digits of your card"
	case "invoice":
		return "the invoices of what you paid (number, amount, currency and date)"
	case "page":
		return "pages you view"
	case "referrer":
		return "the site that sent you to us (without its query string)"
	case "search_terms":
		return "terms you search for"
	case "view_time":
		return "when and how long you view a page"
	case "outbound_link":
		return "links you follow to leave our site"
	case "asset_interaction":
		return "interactions with images, videos and documents"
	case "event":
		return "other interactions the site reports"
	case "country":
		return "your country, derived from your IP address"
	case "region":
		return "your region, derived from your IP address"
	case "city":
		return "your city, derived from your IP address"
	case "browser":
		return "your browser family and version"
	case "os":
		return "your operating system family"
	case "screen":
		return "your screen size class"
	case "comment":
		return "comments you write"
	case "post":
		return "posts and articles you publish"
	case "photo":
		return "photos you upload (location metadata removed)"
	case "video":
		return "videos you upload"
	case "mail":
		return "messages we send you"
	case "support_message":
		return "messages you exchange with our support"
	case "call_recording":
		return "recordings of your calls with us"
	case "support_request":
		return "your support requests"
	case "consent":
		return "the record of consents you gave and withdrew"
	case "subscription":
		return "your newsletter subscriptions"
	}
	return field
}

// sourceLabel is a source in words, for the notice.
func sourceLabel(s string) string {
	switch s {
	case "subject":
		return "you"
	case "form":
		return "forms you fill in"
	case "third-party":
		return "third parties you allowed to share it with us (such as a social login)"
	case "public":
		return "publicly available sources"
	case "observed":
		return "your use of our services"
	case "ip":
		return "your IP address (which is not stored)"
	case "derived":
		return "our own calculations from other data"
	}
	if name, ok := cutImport(s); ok {
		switch name {
		case "seminar":
			return "seminars and events you attended"
		case "survey":
			return "surveys you answered"
		}
		return "records imported from " + name
	}
	return s
}

func cutImport(s string) (string, bool) {
	const prefix = "import:"
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// validSource reports whether s is a source a policy may name.
func validSource(s string) bool {
	switch s {
	case "subject", "form", "third-party", "public", "observed", "ip", "derived":
		return true
	}
	name, ok := cutImport(s)
	return ok && idRE.MatchString(name)
}
