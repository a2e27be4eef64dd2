#!/bin/bash
# Test fixture: the seed's registry-curl.sh (the token flow by hand with curl
# and jq), from the article the project started from; original/registry-curl.sh
# is the file byte for byte. Changed here, and nothing else: the user and
# password (the test's LDAP account) and the registry's port in URL (the
# test's HAProxy; the host is the seed's). Note that the seed's curl -k skips
# certificate checks; the test keeps it.
# The values in double braces are filled in by seed_test.go.
# (end of header)

user='{{.User}}'
password='{{.Password}}'

## Working examples
URL="https://coreos1.domain.com:{{.Port}}/v2/_catalog"
#URL="https://coreos1.domain.com:5000/v2/alpine/manifests/latest"
#URL="https://coreos1.domain.com:5000/v2/hello-world-6.4/manifests/2"
#URL="https://coreos1.domain.com:5000/v2/hello-world-6.4/tags"
#URL="https://coreos1.domain.com:5000/v2/alpine/tags/list"
#URL="https://coreos1.domain.com:5000/v2/alpine/manifests/latest"

auth=$(curl --include -sk $URL |grep ^Www-Authenticate)

realm=$(echo $auth | grep -o '\(realm\)="[^"]*"' | cut -d '"' -f 2)
service=$(echo $auth | grep -o '\(service\)="[^"]*"' | cut -d '"' -f 2|sed 's, ,%20,')
scope=$(echo $auth | grep -o '\(scope\)="[^"]*' | cut -d '"' -f 2)
authurl="$realm?service=$service&scope=$scope"

token=$(curl --user "$user:$password" -s -k "$authurl" |jq -r .token)

#echo auth: $wwwAuth
#echo URL: $registryURL
#echo realm: $realm
#echo service: $service
#echo scope: $scope
#echo authURL: $authURL
#echo token: $token


curl -sk -H "Authorization: Bearer $token" $URL
