package newsletter_test

import "regexp"

func regexpFind(re, s string) []string { return regexp.MustCompile(re).FindStringSubmatch(s) }
