package identity

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"steward/internal/fault"
)

// Field names of the account record, shared with the policies (see the
// common field vocabulary): the policy says which of them a site collects,
// which are required, which the member may edit and which are sensitive.
const (
	FieldName           = "name"
	FieldEmail          = "email"
	FieldPhone          = "phone"
	FieldCompany        = "company"
	FieldOrganisation   = "organisation"
	FieldBillingAddress = "billing_address"
	FieldLocation       = "location"
	FieldDateOfBirth    = "date_of_birth"
	FieldPassword       = "password"
)

// fieldSpec says how one supported sign-up field is checked and stored.
type fieldSpec struct {
	maxRunes  int
	multiline bool // billing addresses span lines
	// sealed fields are stored encrypted under the subject's key for the
	// field's category. The set is fixed by the schema (BYTEA columns), so
	// New refuses a policy that marks any other field sensitive.
	sealed bool
	check  func(v string) error
}

// supported lists every field an account can hold. A policy that declares
// a registration field outside this list is refused by New: Steward would
// otherwise accept data it has nowhere to keep.
var supported = map[string]fieldSpec{
	FieldName:           {maxRunes: 200},
	FieldEmail:          {maxRunes: 254},
	FieldPhone:          {maxRunes: 32, sealed: true, check: checkPhone},
	FieldCompany:        {maxRunes: 200},
	FieldOrganisation:   {maxRunes: 200},
	FieldBillingAddress: {maxRunes: 500, multiline: true, sealed: true},
	FieldLocation:       {maxRunes: 200},
	FieldDateOfBirth:    {maxRunes: 10, sealed: true, check: checkDate},
}

// SupportedFields returns the fields an account can hold, for the policy
// checker and the documentation.
func SupportedFields() []string {
	return []string{FieldName, FieldEmail, FieldPhone, FieldCompany, FieldOrganisation, FieldBillingAddress, FieldLocation, FieldDateOfBirth}
}

// cleanText validates and normalises one free-text value: valid UTF-8, NFC,
// trimmed, bounded, and free of control characters (CR and LF would let a
// name inject mail headers or forge log lines; only a multi-line field
// keeps line feeds, with CR LF folded to LF).
func cleanText(field, v string, spec fieldSpec) (string, error) {
	if len(v) > 4*spec.maxRunes+16 {
		return "", &fault.Error{Code: fault.TooLarge, Field: field, Message: "the value is too long"}
	}
	if !utf8.ValidString(v) {
		return "", fault.FieldError(field, "the value is not valid UTF-8")
	}
	if spec.multiline {
		v = strings.ReplaceAll(v, "\r\n", "\n")
	}
	v = strings.TrimSpace(norm.NFC.String(v))
	for _, r := range v {
		if r == '\n' && spec.multiline {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "", fault.FieldError(field, "the value may not contain line breaks or control characters")
		}
	}
	if utf8.RuneCountInString(v) > spec.maxRunes {
		return "", &fault.Error{Code: fault.TooLarge, Field: field, Message: "the value may have at most " + strconv.Itoa(spec.maxRunes) + " characters"}
	}
	if v == "" {
		return "", nil
	}
	if spec.check != nil {
		if err := spec.check(v); err != nil {
			return "", err
		}
	}
	return v, nil
}

func checkPhone(v string) error {
	digits := 0
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' || r == '/':
		default:
			return fault.FieldError(FieldPhone, "a phone number may hold digits, spaces, a leading + and - ( ) . /")
		}
	}
	if digits < 3 || digits > 20 {
		return fault.FieldError(FieldPhone, "a phone number has between 3 and 20 digits")
	}
	return nil
}

const dateLayout = "2006-01-02"

func checkDate(v string) error {
	if _, err := time.Parse(dateLayout, v); err != nil {
		return fault.FieldError(FieldDateOfBirth, "the date of birth must be a date written YYYY-MM-DD")
	}
	return nil
}

// ageOn returns how many whole years old someone born on dob is on day
// now (both read as calendar dates; a 29 February birthday comes of age
// on 1 March in common years).
func ageOn(dob, now time.Time) int {
	y := now.Year() - dob.Year()
	if now.Month() < dob.Month() || (now.Month() == dob.Month() && now.Day() < dob.Day()) {
		y--
	}
	return y
}
