//! The users file: who may log in, their argon2id password hash and policy group.
//! Loaded with the config (and reloaded with it); the hashes are checked to be
//! well-formed argon2id PHC strings here, so a typo shows at `check`, not at login.

use super::file::UsersFile;
use super::source::{ConfigErrors, Source};
use super::GroupId;
use crate::policy::expr::{GroupMask, GroupTable};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// PHC string (`$argon2id$v=19$m=…`).
    pub password_hash: String,
    pub policy_group: GroupId,
    pub groups: Vec<String>,
    /// `groups` as bits of the groups conditions name (`group("…")`), set
    /// once the config's conditions are compiled.
    pub group_mask: GroupMask,
    pub role: Role,
    /// The language of the user's mails (`en`, `ja`); `None`: English.
    pub lang: Option<String>,
    /// The identity headers' values for the app, built once at load.
    pub headers: IdentityHeaders,
}

/// `x-portcullis-user`, `-groups` and `-email` of a user, ready to forward:
/// made at load, so a forwarded request clones them (a reference count)
/// rather than building strings.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user: http::HeaderValue,
    pub groups: http::HeaderValue,
    pub email: Option<http::HeaderValue>,
}

impl IdentityHeaders {
    /// Names and groups are checked to be `[A-Za-z0-9._@-]` and emails printable
    /// ASCII before this, so every value is a valid header value; one that is
    /// not is left out rather than forwarded half.
    fn of(username: &str, groups: &[String], email: Option<&str>) -> IdentityHeaders {
        let value = |s: &str| http::HeaderValue::from_str(s).ok();
        IdentityHeaders {
            user: value(username).unwrap_or(http::HeaderValue::from_static("")),
            groups: value(&groups.join(",")).unwrap_or(http::HeaderValue::from_static("")),
            email: email.and_then(value),
        }
    }
}

/// What a user may do besides signing in (`role` in the users file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Signs in to apps; administers nothing (the default).
    #[default]
    User,
    /// Unlocks and revokes for other users.
    Admin,
    /// An administrator who is the organization's last resort (one or more).
    Master,
}

impl Role {
    /// Master and admin users administer; they always sign in with a second factor.
    pub fn administers(self) -> bool {
        self != Role::User
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Master => "master",
        }
    }
}

#[derive(Debug, Default)]
pub struct Users(HashMap<String, User>);

impl Users {
    pub fn get(&self, username: &str) -> Option<&User> {
        self.0.get(username)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.0.values()
    }

    /// Gives each user the mask of their groups among those conditions name.
    pub fn set_group_masks(&mut self, table: &GroupTable) {
        for u in self.0.values_mut() {
            u.group_mask = table.mask_of(u.groups.iter().map(String::as_str));
        }
    }
}

/// Reads and checks the users file; `group_id` resolves policy group names.
pub fn load(src: &Source, group_id: &dyn Fn(&str) -> Option<GroupId>) -> Result<Users, ConfigErrors> {
    let file: UsersFile = src.parse()?;
    let mut errors = Vec::new();
    let mut users = HashMap::new();
    for entry in file.user {
        let u = entry.get_ref();
        let name = u.username.get_ref().trim();
        if !valid_username(name) {
            errors.push(src.error_at(
                u.username.span().start,
                format!("`{name}` is not a valid username (1–64 letters, digits, `.`, `_`, `-`, `@`)"),
            ));
            continue;
        }
        if let Err(e) = check_hash(u.password.get_ref()) {
            errors.push(src.error_at(u.password.span().start, format!("user `{name}`: {e}")));
        }
        let Some(group) = group_id(u.policy_group.get_ref()) else {
            errors.push(src.error_at(
                u.policy_group.span().start,
                format!("user `{name}`: no policy group named `{}` in the config", u.policy_group.get_ref()),
            ));
            continue;
        };
        // Groups and the email travel to apps in headers: no room for control characters.
        if let Some(bad) = u.groups.iter().find(|g| !valid_group(g)) {
            errors.push(src.error_at(
                entry.span().start,
                format!(
                    "user `{name}`: group `{}` must be 1–64 letters, digits, `.`, `_`, `-` or `@`",
                    bad.escape_default()
                ),
            ));
        }
        if let Some(email) = u.email.as_deref().filter(|e| !valid_email(e)) {
            errors.push(src.error_at(
                entry.span().start,
                format!("user `{name}`: email `{}` is not an address like `name@example.com`", email.escape_default()),
            ));
        }
        let role = match u.role.as_ref().map(|r| r.get_ref().as_str()) {
            None | Some("user") => Role::User,
            Some("admin") => Role::Admin,
            Some("master") => Role::Master,
            Some(other) => {
                let at = u.role.as_ref().map_or(entry.span().start, |r| r.span().start);
                let message = format!(
                    "user `{name}`: role `{}` is not one of \"master\", \"admin\" or \"user\"",
                    other.escape_default()
                );
                errors.push(src.error_at(at, message));
                Role::User
            }
        };
        let lang =
            match u.lang.as_ref().map(|l| l.get_ref().as_str()) {
                None => None,
                Some(l @ ("en" | "ja")) => Some(l.to_string()),
                Some(other) => {
                    let at = u.lang.as_ref().map_or(entry.span().start, |l| l.span().start);
                    errors.push(src.error_at(
                        at,
                        format!("user `{name}`: lang `{}` is not \"en\" or \"ja\"", other.escape_default()),
                    ));
                    None
                }
            };
        let user = User {
            headers: IdentityHeaders::of(name, &u.groups, u.email.as_deref()),
            role,
            lang,
            username: name.to_string(),
            display_name: u.display_name.clone().unwrap_or_else(|| name.to_string()),
            email: u.email.clone(),
            password_hash: u.password.get_ref().clone(),
            policy_group: group,
            groups: u.groups.clone(),
            group_mask: GroupMask::EMPTY,
        };
        if users.insert(name.to_string(), user).is_some() {
            errors.push(src.error_at(entry.span().start, format!("user `{name}` is defined twice")));
        }
    }
    if errors.is_empty() {
        Ok(Users(users))
    } else {
        Err(ConfigErrors(errors))
    }
}

fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

fn valid_group(g: &str) -> bool {
    valid_username(g)
}

pub fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && e.bytes().all(|b| b.is_ascii_graphic())
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
}

fn check_hash(phc: &str) -> Result<(), String> {
    let hash = argon2::PasswordHash::new(phc).map_err(|e| {
        format!("the password is not a PHC hash string ({e}); make one with `portcullis hash-password`")
    })?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err(format!("the password hash uses `{}`; only argon2id is accepted", hash.algorithm));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    fn src(text: &str) -> Source {
        Source { path: "users.toml".into(), text: text.into() }
    }

    fn group(name: &str) -> Option<GroupId> {
        (name == "staff").then_some(0)
    }

    #[test]
    fn loads_users() {
        let text = format!("[[user]]\nusername = \"alice\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n");
        let users = load(&src(&text), &group).unwrap();
        assert_eq!(users.get("alice").unwrap().display_name, "alice");
    }

    #[test]
    fn reports_every_problem_with_position() {
        let text = "[[user]]\nusername = \"alice\"\npassword = \"plain\"\npolicy_group = \"nope\"\n\
             [[user]]\nusername = \"bob\"\npassword = \"$2b$12$abc\"\npolicy_group = \"staff\"\n";
        let errs = load(&src(text), &group).unwrap_err().0;
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].line, 3);
        assert!(errs[1].message.contains("no policy group named `nope`"));
        let _ = HASH;
    }

    #[test]
    fn header_bound_fields_are_checked() {
        let text = format!(
            "[[user]]\nusername = \"alice\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n\
             groups = [\"ok\", \"bad\\r\\nX-Injected: 1\"]\nemail = \"not an email\"\n"
        );
        let errs = load(&src(&text), &group).unwrap_err().0;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].message.contains("group"), "{errs:?}");
        assert!(errs[1].message.contains("email"), "{errs:?}");
    }

    #[test]
    fn roles_default_to_user_and_are_checked() {
        let user = |name: &str, role: &str| {
            format!("[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n{role}\n")
        };
        let text = [user("u", ""), user("a", "role = \"admin\""), user("m", "role = \"master\"")].concat();
        let users = load(&src(&text), &group).unwrap();
        let role = |n: &str| users.get(n).unwrap().role;
        assert_eq!((role("u"), role("a"), role("m")), (Role::User, Role::Admin, Role::Master));
        assert!(!Role::User.administers() && Role::Admin.administers() && Role::Master.administers());
        let e = load(&src(&user("x", "role = \"root\"")), &group).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].message.contains("role `root` is not one of"), "{e}");
        assert_eq!(e.0[0].line, 5, "the error points at the role line");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = load(&src("[[user]]\nusername = \"a\"\npasword = \"x\"\n"), &group).unwrap_err();
        assert!(e.0[0].message.contains("unknown field"), "{e}");
    }
}
