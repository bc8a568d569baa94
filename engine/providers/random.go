package main

// random:index/randomPassword:RandomPassword as pulumi-random 4.21.2 makes it: `length`
// characters from the enabled classes (at least min* of each), `result` and `bcryptHash`;
// any input change (keepers among them) replaces it.

import (
	"context"
	"crypto/rand"
	"errors"
	"math/big"

	"golang.org/x/crypto/bcrypt"
)

const defaultSpecial = "!@#$%&*()-_=+[]{}<>:?"

func randomTypes() map[string]resourceType {
	return map[string]resourceType{
		"random:index/randomPassword:RandomPassword": {
			replaceOnChange: []string{"*"},
			defaults: func(in props) props {
				out := copyProps(in)
				for _, k := range []string{"special", "upper", "lower", "numeric"} {
					if _, ok := out[k]; !ok {
						out[k] = true
					}
				}
				for _, k := range []string{"minSpecial", "minUpper", "minLower", "minNumeric"} {
					if _, ok := out[k]; !ok {
						out[k] = float64(0)
					}
				}
				return out
			},
			previewOutputs: []string{"result", "bcryptHash"},
			create: func(_ context.Context, _ call, in props) (string, props, error) {
				result, err := password(in)
				if err != nil {
					return "", nil, err
				}
				hash, err := bcrypt.GenerateFromPassword([]byte(result), bcrypt.DefaultCost)
				if err != nil {
					return "", nil, err
				}
				out := copyProps(in)
				out["result"], out["bcryptHash"] = result, string(hash)
				return "none", out, nil
			},
		},
	}
}

func pick(set string) (byte, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
	if err != nil {
		return 0, err
	}
	return set[n.Int64()], nil
}

func password(in props) (string, error) {
	length := int(num(in, "length", 0))
	if length < 1 {
		return "", errors.New("length: must be at least 1")
	}
	special := defaultSpecial
	if s, ok := in["overrideSpecial"].(string); ok {
		special = s
	}
	classes := []struct {
		on  bool
		min int
		set string
	}{
		{boolean(in, "upper", true), int(num(in, "minUpper", 0)), "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
		{boolean(in, "lower", true), int(num(in, "minLower", 0)), "abcdefghijklmnopqrstuvwxyz"},
		{boolean(in, "numeric", true), int(num(in, "minNumeric", 0)), "0123456789"},
		{boolean(in, "special", true), int(num(in, "minSpecial", 0)), special},
	}
	all := ""
	var out []byte
	for _, c := range classes {
		if !c.on || c.set == "" {
			continue
		}
		all += c.set
		for i := 0; i < c.min; i++ {
			b, err := pick(c.set)
			if err != nil {
				return "", err
			}
			out = append(out, b)
		}
	}
	if all == "" {
		return "", errors.New("every character class is off: nothing to make a password of")
	}
	for len(out) < length {
		b, err := pick(all)
		if err != nil {
			return "", err
		}
		out = append(out, b)
	}
	// Shuffle so the required characters are not all at the front.
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}
