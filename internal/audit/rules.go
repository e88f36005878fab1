package audit

import "slices"

// Rules is every rule, by practice, in catalogue order.
func Rules() []Rule {
	return slices.Concat(authnRules, authzRules, tlsRules, rateRules, validateRules, monitorRules, hardenRules, documentRules)
}

// Lookup returns the rule with id.
func Lookup(id string) (Rule, bool) {
	for _, r := range Rules() {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}
