// Package testidp is the test identity provider (TestIDP) of test
// environments: a form where the tester says who they are — pid, security
// level, optional HPR number — and is logged in as that person with amr
// ["pwd"], as HelseID's TestIDP does. Clients can skip the form with the
// test_pid, test_security_level and test_hpr_number parameters.
//
// It knows nothing of the store: the login transaction and what happens
// after the login come from the caller through the Login interface.
package testidp
