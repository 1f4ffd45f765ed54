//! The endpoint an Autotask request counts against: Autotask's thread limit (3 requests in
//! flight per integration and endpoint) applies per entity, and a child route counts against
//! its child entity — `Tickets/5/Notes` and `TicketNotes/query` are both `TicketNotes`.
//!
//! The child routes and their entities are the published Swagger's own grouping (each child
//! route's tag names its entity, e.g. `TicketNotesChild`); `Companies/{id}/Contacts` is the
//! one child route whose entity is a top-level one (`Contacts`). Every request is named here,
//! once, from its URL, whichever caller built it.

/// (parent, child route, entity) of every child route of the API.
const CHILDREN: &[(&str, &str, &str)] = &[
    (
        "ChecklistLibraries",
        "ChecklistItems",
        "ChecklistLibraryChecklistItems",
    ),
    ("Companies", "Alerts", "CompanyAlerts"),
    ("Companies", "Attachments", "CompanyAttachments"),
    ("Companies", "Contacts", "Contacts"),
    ("Companies", "Locations", "CompanyLocations"),
    ("Companies", "Notes", "CompanyNotes"),
    (
        "Companies",
        "SiteConfigurations",
        "CompanySiteConfigurations",
    ),
    ("Companies", "Teams", "CompanyTeams"),
    ("Companies", "ToDos", "CompanyToDos"),
    (
        "CompanyWebhooks",
        "ExcludedResources",
        "CompanyWebhookExcludedResources",
    ),
    ("CompanyWebhooks", "Fields", "CompanyWebhookFields"),
    (
        "ConfigurationItemWebhooks",
        "ExcludedResources",
        "ConfigurationItemWebhookExcludedResources",
    ),
    (
        "ConfigurationItemWebhooks",
        "Fields",
        "ConfigurationItemWebhookFields",
    ),
    (
        "ConfigurationItemWebhooks",
        "UdfFields",
        "ConfigurationItemWebhookUdfFields",
    ),
    ("DocumentCategories", "Documents", "Documents"),
    ("Documents", "Attachments", "DocumentAttachments"),
    ("CompanyWebhooks", "UdfFields", "CompanyWebhookUdfFields"),
    (
        "ConfigurationItemCategories",
        "UdfAssociations",
        "ConfigurationItemCategoryUdfAssociations",
    ),
    (
        "ConfigurationItems",
        "BillingProductAssociations",
        "ConfigurationItemBillingProductAssociations",
    ),
    ("ConfigurationItems", "Notes", "ConfigurationItemNotes"),
    ("ContactGroups", "Contacts", "ContactGroupContacts"),
    (
        "ContactWebhooks",
        "ExcludedResources",
        "ContactWebhookExcludedResources",
    ),
    ("ContactWebhooks", "Fields", "ContactWebhookFields"),
    ("ContactWebhooks", "UdfFields", "ContactWebhookUdfFields"),
    (
        "Contacts",
        "BillingProductAssociations",
        "ContactBillingProductAssociations",
    ),
    (
        "ContractExclusionSets",
        "ExcludedRoles",
        "ContractExclusionSetExcludedRoles",
    ),
    (
        "ContractExclusionSets",
        "ExcludedWorkTypes",
        "ContractExclusionSetExcludedWorkTypes",
    ),
    ("Contracts", "BillingRules", "ContractBillingRules"),
    ("Contracts", "BlockHourFactors", "ContractBlockHourFactors"),
    ("Contracts", "Blocks", "ContractBlocks"),
    ("Contracts", "Charges", "ContractCharges"),
    (
        "Contracts",
        "ExclusionBillingCodes",
        "ContractExclusionBillingCodes",
    ),
    ("Contracts", "ExclusionRoles", "ContractExclusionRoles"),
    ("Contracts", "Milestones", "ContractMilestones"),
    ("Contracts", "Notes", "ContractNotes"),
    ("Contracts", "Rates", "ContractRates"),
    ("Contracts", "Retainers", "ContractRetainers"),
    ("Contracts", "RoleCosts", "ContractRoleCosts"),
    (
        "Contracts",
        "ServiceAdjustments",
        "ContractServiceAdjustments",
    ),
    (
        "Contracts",
        "ServiceBundleAdjustments",
        "ContractServiceBundleAdjustments",
    ),
    (
        "Contracts",
        "ServiceBundleUnits",
        "ContractServiceBundleUnits",
    ),
    ("Contracts", "ServiceBundles", "ContractServiceBundles"),
    ("Contracts", "ServiceUnits", "ContractServiceUnits"),
    ("Contracts", "Services", "ContractServices"),
    ("Contracts", "TicketPurchases", "ContractTicketPurchases"),
    ("Expenses", "Items", "ExpenseItems"),
    ("HolidaySets", "Holidays", "Holidays"),
    (
        "InventoryItems",
        "SerialNumbers",
        "InventoryItemSerialNumbers",
    ),
    ("Opportunities", "Attachments", "OpportunityAttachments"),
    ("Opportunities", "SalesOrders", "SalesOrders"),
    (
        "OrganizationalLevelAssociations",
        "Resources",
        "OrganizationalResources",
    ),
    ("Products", "Notes", "ProductNotes"),
    ("Products", "Tiers", "ProductTiers"),
    ("Products", "Vendors", "ProductVendors"),
    ("Projects", "Attachments", "ProjectAttachments"),
    ("Projects", "Charges", "ProjectCharges"),
    ("Projects", "Notes", "ProjectNotes"),
    ("Projects", "Phases", "Phases"),
    ("Projects", "Tasks", "Tasks"),
    (
        "PurchaseOrderItems",
        "Receiving",
        "PurchaseOrderItemReceiving",
    ),
    ("PurchaseOrders", "Items", "PurchaseOrderItems"),
    ("Quotes", "Items", "QuoteItems"),
    ("Resources", "RoleDepartments", "ResourceRoleDepartments"),
    ("Resources", "RoleQueues", "ResourceRoleQueues"),
    ("Resources", "Roles", "ResourceRoles"),
    ("Resources", "ServiceDeskRoles", "ResourceServiceDeskRoles"),
    ("Resources", "Skills", "ResourceSkills"),
    ("ServiceBundles", "Services", "ServiceBundleServices"),
    ("ServiceCallTasks", "Resources", "ServiceCallTaskResources"),
    (
        "ServiceCallTickets",
        "Resources",
        "ServiceCallTicketResources",
    ),
    ("ServiceCalls", "Tasks", "ServiceCallTasks"),
    ("ServiceCalls", "Tickets", "ServiceCallTickets"),
    (
        "ServiceLevelAgreements",
        "Results",
        "ServiceLevelAgreementResults",
    ),
    ("Subscriptions", "Periods", "SubscriptionPeriods"),
    ("Tasks", "Attachments", "TaskAttachments"),
    ("Tasks", "Notes", "TaskNotes"),
    ("Tasks", "Predecessors", "TaskPredecessors"),
    ("Tasks", "SecondaryResources", "TaskSecondaryResources"),
    (
        "TicketCategories",
        "FieldDefaults",
        "TicketCategoryFieldDefaults",
    ),
    (
        "Tickets",
        "AdditionalConfigurationItems",
        "TicketAdditionalConfigurationItems",
    ),
    ("Tickets", "AdditionalContacts", "TicketAdditionalContacts"),
    ("Tickets", "Attachments", "TicketAttachments"),
    (
        "Tickets",
        "ChangeRequestApprovals",
        "TicketChangeRequestApprovals",
    ),
    ("Tickets", "Charges", "TicketCharges"),
    ("Tickets", "ChecklistItems", "TicketChecklistItems"),
    ("Tickets", "ChecklistLibraries", "TicketChecklistLibraries"),
    ("Tickets", "Notes", "TicketNotes"),
    ("Tickets", "RmaCredits", "TicketRmaCredits"),
    ("Tickets", "SecondaryResources", "TicketSecondaryResources"),
    (
        "UserDefinedFields",
        "ListItems",
        "UserDefinedFieldListItems",
    ),
    (
        "TicketNoteWebhooks",
        "ExcludedResources",
        "TicketNoteWebhookExcludedResources",
    ),
    ("TicketNoteWebhooks", "Fields", "TicketNoteWebhookFields"),
    (
        "TicketWebhooks",
        "ExcludedResources",
        "TicketWebhookExcludedResources",
    ),
    ("TicketWebhooks", "Fields", "TicketWebhookFields"),
    ("TicketWebhooks", "UdfFields", "TicketWebhookUdfFields"),
];

/// The endpoint `target` counts against: a path relative to the zone (`V1.0/Tickets/query`,
/// `Tickets/5/Notes`), or an absolute URL (a `nextPageUrl`). Names as the API spells them
/// (`TicketNotes`); an entity that is not in the table keeps the spelling it was given.
pub fn endpoint(target: &str) -> String {
    let path = match target.split_once("://") {
        // An absolute URL: its path, after the host.
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Everything up to the version (`ATServicesRest/V1.0/`) is the zone's base.
    if let Some(v) = segs.iter().position(|s| s.eq_ignore_ascii_case("v1.0")) {
        segs.drain(..=v);
    }
    let Some(first) = segs.first() else {
        return String::new();
    };
    match (segs.get(1), segs.get(2)) {
        (Some(id), Some(child))
            if is_id(id) && !child.eq_ignore_ascii_case("entityInformation") =>
        {
            child_entity(first, child)
        }
        _ => (*first).to_string(),
    }
}

/// The entity of the child route `parent/{id}/child`; for a route the table lacks, the
/// parent's and child's names joined (the API's own rule for most of them).
fn child_entity(parent: &str, child: &str) -> String {
    CHILDREN
        .iter()
        .find(|(p, c, _)| p.eq_ignore_ascii_case(parent) && c.eq_ignore_ascii_case(child))
        .map_or_else(|| format!("{parent}{child}"), |(_, _, e)| (*e).to_string())
}

fn is_id(seg: &str) -> bool {
    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit())
        || seg.starts_with('{') && seg.ends_with('}')
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn a_child_route_counts_against_its_child_entity() {
        for (target, expected) in [
            ("V1.0/Tickets/query", "Tickets"),
            ("Tickets", "Tickets"),
            ("Tickets/5", "Tickets"),
            ("V1.0/Tickets/5/Notes", "TicketNotes"),
            ("tickets/5/notes", "TicketNotes"),
            ("V1.0/TicketNotes/query", "TicketNotes"),
            ("Companies/12/Contacts", "Contacts"),
            ("V1.0/Contacts/query/count", "Contacts"),
            ("Projects/3/Tasks", "Tasks"),
            ("Opportunities/3/SalesOrders", "SalesOrders"),
            ("HolidaySets/1/Holidays", "Holidays"),
            ("Tickets/entityInformation/fields", "Tickets"),
            ("V1.0/ThresholdInformation", "ThresholdInformation"),
            (
                "https://webservices15.autotask.net/ATServicesRest/V1.0/Tickets/query/next?paging=abc",
                "Tickets",
            ),
            (
                "https://ws.example/ATServicesRest/V1.0/Tickets/7/Notes/query/next?paging=x",
                "TicketNotes",
            ),
            ("Widgets/3/Parts", "WidgetsParts"),
        ] {
            assert_eq!(endpoint(target), expected, "{target}");
        }
    }
}
