//! Which Autotask company each organization is: listing, suggestions, set/unset, exclusions.
