package iam

import (
	"strings"
	"unicode/utf8"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// Password policy bounds. The maximum keeps one argon2id check bounded
// whatever a client sends.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
)

// common are passwords at the top of every leaked-password list that meet
// the length rule; shorter ones fail it anyway.
var common = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Fields(`1234567890 0123456789 12345678910 123456789a 1q2w3e4r5t
		qwertyuiop password1 password12 password123 password1234 passw0rd123 iloveyou123 qwerty1234
		qwerty12345 1234567890a abc1234567 aaaaaaaaaa 1111111111 0000000000 1234512345 9876543210
		letmein123 welcome123 administrator changeme123 zaq12wsxcde qazwsxedcrfv 1qaz2wsx3edc
		tianshu123 tianshu1234 adminadmin admin12345 admin123456 football123 baseball123 superman123
		princess123 sunshine123 trustno1234 dragon1234 monkey1234 master1234 shadow1234 p@ssw0rd123
		p@ssword123 password!1 Password1! Password123 Password123! Welcome123 Qwerty123! Aa123456789`) {
		m[strings.ToLower(p)] = true
	}
	return m
}()

// CheckPasswordPolicy returns an InvalidParameterValue error naming field
// when password is too short or too long, equals the user name, or is one
// of the most common passwords.
func CheckPasswordPolicy(field, password, userName string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return api.InvalidValue(field, "must be at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return api.InvalidValue(field, "must be at most %d bytes", MaxPasswordLen)
	case userName != "" && strings.EqualFold(password, userName):
		return api.InvalidValue(field, "must not be the user name")
	case common[strings.ToLower(password)]:
		return api.InvalidValue(field, "is one of the most common passwords; choose another")
	}
	return nil
}
