//! The builtin crate's four jobs reach the global registry of a binary that only calls
//! `link()`: its `inventory::submit!`s are not dropped by the linker (inventory issue #50).

use barycenter_jobs_core::Registry;

#[test]
fn link_makes_the_four_builtin_jobs_visible_to_the_inventory() {
    barycenter_jobs_builtin::link();
    let registry = Registry::from_inventory().expect("inventory registry builds");
    let expected = [
        (
            "cleanup_expired_challenges",
            "Clean up expired WebAuthn challenges",
            "0 */5 * * * *",
        ),
        (
            "cleanup_expired_device_codes",
            "Clean up expired device authorization codes",
            "0 45 * * * *",
        ),
        (
            "cleanup_expired_refresh_tokens",
            "Clean up expired refresh tokens",
            "0 30 * * * *",
        ),
        (
            "cleanup_expired_sessions",
            "Clean up expired user sessions",
            "0 0 * * * *",
        ),
    ];
    for (name, description, schedule) in expected {
        let job = registry
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the inventory registry"));
        assert_eq!(job.name(), name);
        assert_eq!(job.description(), description, "{name}");
        assert_eq!(job.job().schedule(), schedule, "{name}");
    }
    let builtin: Vec<&str> = registry
        .names()
        .filter(|n| n.starts_with("cleanup_expired_"))
        .collect();
    assert_eq!(builtin.len(), 4, "{builtin:?}");
}
