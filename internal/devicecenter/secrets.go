package devicecenter

import (
	"encoding/json"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/redact"
)

// takeCredentials moves the userinfo of a device address into the user
// name and password: it returns the address without it and the user and
// password to store (user and pass are those of the request, nil when it
// did not give them). Credentials given both ways must agree.
func takeCredentials(address string, user, pass *string) (string, *string, *string, error) {
	clean, u, p, hasPass := redact.SplitUserinfo(address)
	if clean == address {
		return address, user, pass, nil
	}
	if user != nil && *user != "" && *user != u {
		return "", nil, nil, api.InvalidValue("Username", "differs from the user name inside Address; give the credentials once")
	}
	if pass != nil && *pass != "" && hasPass && *pass != p {
		return "", nil, nil, api.InvalidValue("Password", "differs from the password inside Address; give the credentials once")
	}
	user = &u
	if hasPass {
		pass = &p
	}
	return clean, user, pass, nil
}

// splitSecretOptions takes the values of Options entries marked secret
// ({"name", "value", "secret": true}) out of opts, in place, and returns
// them by "<option>/<name>". An entry whose value is absent or the mask
// keeps the value it had in old (the client sends back what it read); one
// with no value to keep is refused.
func splitSecretOptions(opts map[string]any, old map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for key, v := range opts {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		for i, e := range list {
			m, ok := e.(map[string]any)
			if !ok || !redact.IsSecretEntry(m) {
				continue
			}
			name, _ := m["name"].(string)
			id := key + "/" + name
			val, has := m["value"].(string)
			if !has || val == redact.Mask {
				prev, kept := old[id]
				if !kept {
					return nil, api.InvalidValue(fmt.Sprintf("Options.%s[%d].value", key, i), "required: no earlier value to keep for %s", name)
				}
				val = prev
			}
			out[id] = val
			delete(m, "value")
		}
	}
	return out, nil
}

// joinSecretOptions puts the values of secret entries back into opts.
func joinSecretOptions(opts map[string]any, vals map[string]string) {
	for key, v := range opts {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		for _, e := range list {
			m, ok := e.(map[string]any)
			if !ok || !redact.IsSecretEntry(m) {
				continue
			}
			name, _ := m["name"].(string)
			if val, ok := vals[key+"/"+name]; ok {
				m["value"] = val
			}
		}
	}
}

// sealSecrets seals the values of secret entries ("" for none).
func (s *Service) sealSecrets(vals map[string]string) string {
	if len(vals) == 0 {
		return ""
	}
	b, _ := json.Marshal(vals)
	return s.box.Seal(string(b))
}

// openSecrets opens what sealSecrets sealed.
func (s *Service) openSecrets(sealed string) (map[string]string, error) {
	if sealed == "" {
		return nil, nil
	}
	b, err := s.box.Open(sealed)
	if err != nil {
		return nil, err
	}
	var vals map[string]string
	if err := json.Unmarshal([]byte(b), &vals); err != nil {
		return nil, err
	}
	return vals, nil
}

// maskedOptions returns a copy of opts with secret entries masked.
func maskedOptions(opts map[string]any) map[string]any {
	if opts == nil {
		return map[string]any{}
	}
	b, _ := json.Marshal(opts)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	redact.Entries(out)
	return out
}

// secretValues returns the values of secret entries in opts, by
// "<option>/<name>", to keep on a change that sends the mask back.
func secretValues(opts map[string]any) map[string]string {
	b, _ := json.Marshal(opts)
	var cp map[string]any
	_ = json.Unmarshal(b, &cp)
	vals, _ := splitSecretOptions(cp, nil)
	return vals
}
