#!/usr/bin/env python3
"""Generates sim/data/tenant.json: a deterministic, realistic MSP tenant for weft-sim.

Usage: python3 sim/scripts/gen_tenant.py [> sim/data/tenant.json]
(with no redirection it writes sim/data/tenant.json next to this script's parent).
Dates are relative to a fixed reference day so the output is stable; contracts "ending soon"
are computed relative to that day AND the simulator does not shift them, so regenerate with
--today YYYY-MM-DD if you need them relative to the real date.
"""
import argparse
import datetime as dt
import json
import os
import random

ap = argparse.ArgumentParser()
ap.add_argument("--today", default="2026-11-23")
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--out", default=None)
args = ap.parse_args()

R = random.Random(args.seed)
TODAY = dt.date.fromisoformat(args.today)


def ts(d, h=9, m=0):
    return f"{d.isoformat()}T{h:02d}:{m:02d}:00Z"


def days(n):
    return TODAY + dt.timedelta(days=n)


def pl(pairs, default=None, parent=None):
    out = []
    for i, p in enumerate(pairs):
        v, label = p[0], p[1]
        item = {"value": str(v), "label": label, "isDefaultValue": v == default,
                "sortOrder": i + 1, "isActive": True, "isSystem": False}
        if len(p) > 2:
            item["parentValue"] = str(p[2])
        if len(p) > 3:
            item["isActive"] = p[3]
        out.append(item)
    return out


picklists = {
    "Companies": {
        "companyType": pl([(1, "Customer"), (2, "Lead"), (3, "Prospect"), (4, "Dead"),
                           (6, "Cancelation"), (7, "Vendor"), (8, "Partner")], default=1),
        "classification": pl([(1, "Gold"), (2, "Silver"), (3, "Bronze")]),
        "countryID": pl([(237, "United States"), (236, "United Kingdom"), (39, "Canada"),
                         (14, "Australia")]),
        "territoryID": pl([(1, "East"), (2, "West"), (3, "Central")]),
        "marketSegmentID": pl([(1, "Healthcare"), (2, "Legal"), (3, "Manufacturing"),
                               (4, "Finance"), (5, "Education"), (6, "Non-profit")]),
    },
    "CompanyLocations": {"countryID": None},
    "CompanyNotes": {"actionType": pl([(1, "Phone Call"), (2, "Meeting"), (3, "Email"),
                                       (4, "General Note")])},
    "Tickets": {
        "status": pl([(1, "New"), (5, "Complete"), (7, "Waiting Customer"), (8, "In Progress"),
                      (9, "Waiting Materials"), (10, "Dispatched"), (11, "Escalate"),
                      (12, "Waiting Vendor"), (13, "Waiting Approval")], default=1),
        "priority": pl([(1, "High"), (2, "Medium"), (3, "Low"), (4, "Critical")], default=2),
        "queueID": pl([(5, "Client Portal"), (6, "Post Sale"), (8, "Level I Support"),
                       (29682833, "Level II Support"), (29683354, "Monitoring Alert"),
                       (29683355, "Projects"), (29683356, "Recurring Tickets")]),
        "issueType": pl([(1, "Hardware"), (2, "Software"), (3, "Network"), (4, "Email"),
                         (5, "Security"), (6, "Account Management")]),
        "subIssueType": pl([(101, "Workstation", 1), (102, "Server", 1), (103, "Printer", 1),
                            (201, "Office 365", 2), (202, "Line of Business App", 2),
                            (203, "Operating System", 2), (301, "Firewall", 3),
                            (302, "Wireless", 3), (303, "VPN", 3), (401, "Mailbox", 4),
                            (402, "Spam", 4), (501, "Malware", 5), (502, "Phishing", 5),
                            (601, "New User", 6), (602, "Terminated User", 6),
                            (603, "Password Reset", 6)]),
        "ticketCategory": pl([(2, "Standard"), (3, "RMM Alert"), (4, "Change Request"),
                              (5, "Onboarding")], default=2),
        "ticketType": pl([(1, "Service Request"), (2, "Incident"), (3, "Problem"),
                          (4, "Change Request"), (5, "Alert")], default=1),
        "source": pl([(-1, "Insourced"), (1, "Phone"), (2, "Email"), (4, "Client Portal"),
                      (6, "Monitoring Alert"), (8, "Web Portal")]),
    },
    "TicketNotes": {
        "noteType": pl([(1, "Task Summary"), (2, "Task Detail"), (3, "Task Notes"),
                        (13, "Internal Note"), (14, "Resolution")]),
        "publish": pl([(1, "All Autotask Users"), (2, "Internal Project Team"),
                       (3, "Internal and Co-managed")]),
    },
    "TicketAttachments": {"publish": pl([(1, "All Autotask Users"), (2, "Internal Users Only")])},
    "DocumentAttachments": {"publish": pl([(1, "All Autotask Users"), (2, "Internal Users Only")])},
    "Documents": {"publish": pl([(1, "All Autotask Users"), (2, "Internal Users Only")])},
    "TicketCategories": {"displayColorRGB": pl([(1, "Blue"), (2, "Green"), (3, "Red")])},
    "ConfigurationItems": {
        "configurationItemType": pl([(1, "Workstation"), (2, "Server"), (3, "Firewall"),
                                     (4, "Switch"), (5, "Printer"), (6, "Mobile Device"),
                                     (7, "Virtual Machine")]),
        "configurationItemCategoryID": pl([(100, "Managed"), (101, "Unmanaged"),
                                           (102, "Network Devices")]),
    },
    "Contracts": {
        "contractType": pl([(1, "Time & Materials"), (3, "Fixed Price"), (4, "Block Hours"),
                            (6, "Retainer"), (7, "Recurring Service"), (8, "Per Ticket")]),
        "contractCategory": pl([(1, "Managed Services"), (2, "Project"), (3, "Break/Fix")]),
        "status": pl([(0, "Inactive"), (1, "Active")], default=1),
        "serviceLevelAgreementID": pl([(1, "Standard SLA"), (2, "Premium SLA")]),
    },
    "Projects": {
        "projectType": pl([(1, "Proposal"), (2, "Template"), (4, "Baseline"), (5, "Client"),
                           (8, "Internal")]),
        "status": pl([(0, "Inactive"), (1, "New"), (2, "In Progress"), (5, "Complete"),
                      (8, "On Hold")], default=1),
        "department": pl([(1, "Service Desk"), (2, "Projects"), (3, "Sales")]),
    },
    "Tasks": {
        "status": pl([(1, "New"), (5, "Complete"), (8, "In Progress")], default=1),
        "taskType": pl([(1, "Fixed Work"), (2, "Fixed Duration")], default=1),
    },
    "Resources": {"licenseType": pl([(1, "Full"), (2, "Time and Attendance"), (3, "Dispatch")])},
    "Products": {"productCategory": pl([(1, "Hardware"), (2, "Software"), (3, "Services")])},
    "TimeEntries": {"billingCodeID": pl([(29682801, "Remote Support"), (29682802, "Onsite Support"),
                                         (29682803, "Project Labor"), (29682804, "Internal")])},
}
picklists["CompanyLocations"]["countryID"] = picklists["Companies"]["countryID"]

udfs = {
    "Companies": [
        {"name": "CustomerRanking", "label": "Customer Ranking", "type": "string", "length": 100,
         "picklistValues": pl([("Golden", "Golden"), ("Silver", "Silver"), ("Bronze", "Bronze")])},
        {"name": "RMM Site ID", "label": "RMM Site ID", "type": "string", "length": 100},
        {"name": "Onboarded On", "label": "Onboarded On", "type": "date"},
    ],
    "Contacts": [{"name": "Preferred Channel", "type": "string", "length": 50},
                 {"name": "VIP", "type": "string", "length": 10}],
    "Tickets": [{"name": "Alert ID", "type": "string", "length": 100},
                {"name": "Customer Impact Score", "type": "number"}],
    "ConfigurationItems": [{"name": "RMM Device ID", "type": "string", "length": 100},
                           {"name": "Backup Status", "type": "string", "length": 50}],
    "Contracts": [{"name": "Auto Renew", "type": "string", "length": 10}],
    "Projects": [{"name": "Project Sponsor", "type": "string", "length": 100}],
    "CompanyLocations": [{"name": "Site Code", "type": "string", "length": 20}],
}

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
         "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
         "Sarah", "Charles", "Karen", "Priya", "Wei", "Carlos", "Fatima", "Olga", "Kenji",
         "Aisha", "Liam", "Noah", "Emma", "Sofia", "Mateo", "Chloe", "Ethan", "Zoe"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Lopez",
        "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Lee", "Thompson", "White",
        "Harris", "Clark", "Lewis", "Patel", "Nguyen", "Kim", "Okafor", "Schmidt", "Rossi"]
CITIES = [("Denver", "CO", "80202"), ("Austin", "TX", "78701"), ("Boston", "MA", "02108"),
          ("Portland", "OR", "97201"), ("Raleigh", "NC", "27601"), ("Columbus", "OH", "43215"),
          ("Phoenix", "AZ", "85003"), ("Madison", "WI", "53703")]
CO_WORDS = ["Acme", "Summit", "Riverbend", "Bluebird", "Northwind", "Cedar", "Harbor", "Granite",
            "Pioneer", "Maple", "Lakeside", "Evergreen", "Ironwood", "Keystone", "Beacon",
            "Silverline", "Redwood", "Foxglove", "Copperfield", "Oakridge", "Meadowbrook",
            "Stonegate", "Brightwater", "Falcon", "Juniper", "Horizon", "Aspen", "Willow",
            "Crescent", "Trident", "Orchard", "Sterling", "Canyon", "Prairie", "Highland",
            "Sapphire", "Timberline", "Westfield", "Bayside", "Clearview"]
CO_KIND = ["Dental", "Law Group", "Manufacturing", "Accounting", "Medical Partners",
           "Logistics", "Architects", "Credit Union", "Academy", "Foundation", "Realty",
           "Engineering"]

records = {k: [] for k in ["Companies", "CompanyLocations", "CompanyNotes", "Contacts",
                           "Resources", "Roles", "Tickets", "TicketNotes", "TicketCategories",
                           "ConfigurationItems", "ConfigurationItemTypes", "Products",
                           "Contracts", "Projects", "Phases", "Tasks", "TimeEntries", "Surveys",
                           "SurveyResults", "DocumentCategories", "Documents",
                           "DocumentAttachments", "TicketAttachments", "CompanyWebhooks",
                           "CompanyWebhookFields", "TicketWebhooks", "TicketWebhookFields",
                           "TicketWebhookExcludedResources", "WebhookEventErrorLogs"]}

# Resources (the MSP's staff; id 29682885 style ids are typical but small ids are easier).
resources = []
for i in range(20):
    fn, ln = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
    rid = 29682885 + i
    resources.append(rid)
    records["Resources"].append({
        "id": rid, "firstName": fn, "lastName": ln, "email": f"{fn.lower()}.{ln.lower()}@brightpath-it.example",
        "userName": f"{fn[0].lower()}{ln.lower()}"[:32], "title": R.choice(["Technician I", "Technician II", "Service Manager", "Engineer", "Project Manager", "vCIO"]),
        "isActive": i != 19, "resourceType": "Employee", "licenseType": 1, "locationID": 1,
        "officePhone": f"(303) 555-{1000 + i:04d}", "mobilePhone": None,
        "hireDate": ts(days(-R.randint(100, 3000)))})
records["Resources"].append({"id": 29682905, "firstName": "Weft", "lastName": "API", "email": "api@weft.test",
                             "userName": "weftapi", "title": "API User", "isActive": True,
                             "resourceType": "API", "licenseType": 1, "locationID": 1})
for i, (name, rate) in enumerate([("Technician", 125), ("Senior Engineer", 175), ("Project Manager", 150), ("vCIO", 200)]):
    records["Roles"].append({"id": 29683461 + i, "name": name, "description": name, "hourlyRate": rate, "isActive": True})
roles = [r["id"] for r in records["Roles"]]

# Companies: id 0 is the MSP itself (as in real tenants).
companies = []
types = ([1] * 26) + [3] * 5 + [2] * 4 + [7, 8, 4, 6]
records["Companies"].append({
    "id": 0, "companyName": "BrightPath IT Services", "companyNumber": "0", "companyType": 8,
    "classification": None, "isActive": True, "ownerResourceID": resources[0], "phone": "(303) 555-0100",
    "webAddress": "https://brightpath-it.example", "address1": "100 Market St", "city": "Denver",
    "state": "CO", "postalCode": "80202", "countryID": 237, "territoryID": 2,
    "createDate": ts(days(-4000)), "lastActivityDate": ts(days(-1)),
    "userDefinedFields": [{"name": "CustomerRanking", "value": None}]})
used = set()
for i in range(40):
    w = CO_WORDS[i]
    kind = CO_KIND[i % len(CO_KIND)]
    name = f"{w} {kind}"
    ctype = types[i % len(types)]
    cid = 174 + i * 3
    city, st, zp = CITIES[i % len(CITIES)]
    active = ctype not in (4, 6) and i != 17
    companies.append((cid, ctype, name, active))
    ranking = R.choice(["Golden", "Silver", "Bronze", None]) if ctype == 1 else None
    rec = {
        "id": cid, "companyName": name, "companyNumber": f"C{1000 + i}", "companyType": ctype,
        "classification": R.choice([1, 2, 3, None]), "isActive": active,
        "ownerResourceID": R.choice(resources[:6]), "parentCompanyID": None,
        "phone": f"({R.randint(201, 989)}) 555-{R.randint(0, 9999):04d}",
        "fax": None, "webAddress": f"https://www.{w.lower()}{kind.split()[0].lower()}.example",
        "address1": f"{R.randint(10, 9999)} {R.choice(['Main', 'Oak', 'Pine', 'Elm', 'Cedar', 'Lake'])} St",
        "address2": R.choice([None, None, "Suite 200", "Floor 3"]), "city": city, "state": st,
        "postalCode": zp, "countryID": 237, "territoryID": R.choice([1, 2, 3]),
        "marketSegmentID": R.choice([1, 2, 3, 4, 5, 6]),
        "createDate": ts(days(-R.randint(30, 3000))), "lastActivityDate": ts(days(-R.randint(0, 90))),
        "lastTrackedModifiedDateTime": ts(days(-R.randint(0, 30))),
        "userDefinedFields": [
            {"name": "CustomerRanking", "value": ranking},
            {"name": "RMM Site ID", "value": f"site-{cid:05d}" if ctype == 1 and i % 5 else None},
            {"name": "Onboarded On", "value": days(-R.randint(60, 2000)).isoformat() if ctype == 1 else None},
        ]}
    records["Companies"].append(rec)
# a child company
records["Companies"][3]["parentCompanyID"] = companies[0][0]
customers = [c for c in companies if c[1] == 1]

loc_id = 10
cust_locations = {}
for cid, ctype, name, active in companies:
    n = 2 if cid % 2 == 0 and ctype == 1 else 1
    for k in range(n):
        city, st, zp = R.choice(CITIES)
        records["CompanyLocations"].append({
            "id": loc_id, "companyID": cid, "name": "Headquarters" if k == 0 else f"{city} Branch",
            "description": None, "address1": f"{R.randint(10, 999)} Commerce Way", "address2": None,
            "city": city, "state": st, "postalCode": zp, "countryID": 237,
            "phone": None, "fax": None, "isActive": True, "isPrimary": k == 0,
            "userDefinedFields": [{"name": "Site Code", "value": f"S{loc_id:04d}"}]})
        cust_locations.setdefault(cid, []).append(loc_id)
        loc_id += 1

contacts_by_co = {}
cont_id = 30682000
for i in range(150):
    cid, ctype, cname, active = companies[i % 40] if i >= 40 else companies[i]
    fn, ln = R.choice(FIRST), R.choice(LAST)
    dom = cname.split()[0].lower() + ".example"
    email = f"{fn.lower()}.{ln.lower()}{i}@{dom}" if i % 23 else None
    records["Contacts"].append({
        "id": cont_id, "companyID": cid, "companyLocationID": cust_locations[cid][0],
        "firstName": fn, "lastName": ln, "emailAddress": email, "emailAddress2": None, "emailAddress3": None,
        "phone": f"(303) 555-{R.randint(0, 9999):04d}", "mobilePhone": R.choice([None, f"(720) 555-{R.randint(0, 9999):04d}"]),
        "title": R.choice(["Office Manager", "CEO", "CFO", "Controller", "Receptionist", "IT Contact", "Owner", "Paralegal", "Nurse", "Engineer"]),
        "isActive": 0 if i % 19 == 7 else 1, "primaryContact": i < 40, "externalID": None,
        "createDate": ts(days(-R.randint(10, 2000))), "lastActivityDate": ts(days(-R.randint(0, 120))),
        "lastModifiedDate": ts(days(-R.randint(0, 60))),
        "userDefinedFields": [{"name": "Preferred Channel", "value": R.choice(["Email", "Phone", "Teams", None])},
                              {"name": "VIP", "value": "Yes" if i % 11 == 0 else None}]})
    contacts_by_co.setdefault(cid, []).append(cont_id)
    cont_id += 1

for i, (name, nick, api) in enumerate([("Standard", "STD", False), ("RMM Alert", "RMM", True), ("Change Request", "CHG", False), ("Onboarding", "ONB", False)]):
    records["TicketCategories"].append({"id": 2 + i, "name": name, "nickname": nick, "isActive": True,
                                        "isApiOnly": api, "isGlobalDefault": i == 0, "displayColorRGB": 1 + i % 3})

for i, n in enumerate(["Workstation", "Server", "Firewall", "Switch", "Printer", "Mobile Device", "Virtual Machine"]):
    records["ConfigurationItemTypes"].append({"id": 1 + i, "name": n, "isActive": True})

products = [
    (29682900, "Dell OptiPlex 7010", "Dell", 1), (29682901, "Dell PowerEdge R650", "Dell", 1),
    (29682902, "FortiGate 60F", "Fortinet", 1), (29682903, "Cisco Catalyst 9200", "Cisco", 1),
    (29682904, "HP LaserJet Pro M404", "HP", 1), (29682905, "Apple iPhone 15", "Apple", 1),
    (29682906, "Microsoft 365 Business Premium", "Microsoft", 2), (29682907, "Managed Services - Per Device", "BrightPath", 3),
]
for pid, name, mfr, cat in products:
    records["Products"].append({"id": pid, "name": name, "description": name, "sku": f"SKU-{pid % 1000}",
                                "manufacturerName": mfr, "manufacturerProductName": name,
                                "productCategory": cat, "unitCost": 100.0, "unitPrice": 150.0,
                                "isActive": True, "isSerialized": cat == 1})

contracts = {}
ctr_id = 29683500
for i, (cid, ctype, name, active) in enumerate(customers[:15]):
    start = days(-R.randint(200, 700))
    end = days(R.randint(3, 29)) if i % 4 == 0 else days(R.randint(60, 500)) if i % 5 else days(-R.randint(5, 60))
    records["Contracts"].append({
        "id": ctr_id, "contractName": f"{name} - Managed Services", "contractNumber": f"MSA-{2024 + i % 3}-{i:03d}",
        "companyID": cid, "contactID": contacts_by_co[cid][0], "contractType": 7, "contractCategory": 1,
        "status": 1 if end >= TODAY else 0, "startDate": ts(start, 0), "endDate": ts(end, 0),
        "description": "Fully managed IT services", "isDefaultContract": True,
        "estimatedRevenue": float(R.randint(12, 90) * 1000), "timeReportingRequiresStartAndStopTimes": 1,
        "serviceLevelAgreementID": 2 if i % 3 == 0 else 1,
        "userDefinedFields": [{"name": "Auto Renew", "value": R.choice(["Yes", "No"])}]})
    contracts[cid] = ctr_id
    ctr_id += 1

cis = []
ci_id = 29683700
for i in range(80):
    cid = customers[i % len(customers)][0]
    kind = [1, 1, 1, 2, 3, 4, 5, 6, 7][i % 9]
    prod = {1: 29682900, 2: 29682901, 3: 29682902, 4: 29682903, 5: 29682904, 6: 29682905, 7: 29682901}[kind]
    host = f"{CO_WORDS[customers.index(next(c for c in customers if c[0] == cid))][:4].upper()}-{['WS', 'WS', 'WS', 'SRV', 'FW', 'SW', 'PRN', 'MOB', 'VM'][i % 9]}{i:02d}"
    serial = None if i % 7 == 3 else f"SN{R.randint(10**7, 10**8 - 1)}"
    rec = {
        "id": ci_id, "companyID": cid, "companyLocationID": cust_locations[cid][0],
        "contactID": R.choice(contacts_by_co.get(cid, [None])), "productID": prod, "isActive": i % 13 != 5,
        "referenceTitle": None if i % 17 == 4 else host, "referenceNumber": f"A{i:05d}", "serialNumber": serial,
        "configurationItemType": None if i % 19 == 6 else kind, "configurationItemCategoryID": 100 if kind in (1, 2, 7) else 102,
        "contractID": contracts.get(cid), "installDate": ts(days(-R.randint(30, 1500)), 0),
        "warrantyExpirationDate": ts(days(R.randint(-200, 900)), 0), "location": None, "notes": None,
        "rmmDeviceUID": f"{R.getrandbits(32):08x}-{R.getrandbits(16):04x}" if kind in (1, 2, 7) else None,
        "rmmDeviceAuditHostname": host if kind in (1, 2, 7) else None,
        "rmmDeviceAuditOperatingSystem": {1: "Windows 11 Pro", 2: "Windows Server 2022", 7: "Ubuntu 22.04"}.get(kind),
        "createDate": ts(days(-R.randint(30, 1500))), "lastModifiedTime": ts(days(-R.randint(0, 30))),
        "userDefinedFields": [{"name": "RMM Device ID", "value": f"dev-{ci_id}" if kind in (1, 2, 7) else None},
                              {"name": "Backup Status", "value": R.choice(["OK", "Failed", "Warning", None]) if kind in (2, 7) else None}]}
    records["ConfigurationItems"].append(rec)
    cis.append((ci_id, cid))
    ci_id += 1

TITLES = {1: ["Laptop will not power on", "Replace failing hard drive", "Monitor flickering", "Printer jam on 2nd floor", "Server disk space low"],
          2: ["Outlook keeps crashing", "Install Adobe Acrobat", "QuickBooks update failed", "Teams audio not working", "Windows update stuck"],
          3: ["Internet down at branch", "Wi-Fi slow in conference room", "VPN cannot connect", "Firewall firmware upgrade"],
          4: ["Mailbox full", "Set up shared mailbox", "Spam getting through"],
          5: ["Suspicious email reported", "Malware detected on workstation", "MFA reset request"],
          6: ["New hire onboarding", "Terminate user account", "Password reset"]}
SUBS = {1: [101, 102, 103], 2: [201, 202, 203], 3: [301, 302, 303], 4: [401, 402], 5: [501, 502], 6: [601, 602, 603]}
tickets = []
t_id = 7800
queues = [5, 6, 8, 29682833, 29683354, 29683355, 29683356]
for i in range(120):
    cid = customers[(i * 7) % len(customers)][0] if i % 10 else 0 if i == 0 else customers[i % len(customers)][0]
    issue = 1 + i % 6
    status = [1, 1, 8, 8, 5, 5, 5, 7, 9, 10, 11, 12, 13][i % 13]
    created = days(-R.randint(0, 120))
    ci = next((c for c, co in cis if co == cid), None) if i % 3 == 0 else None
    assigned = R.choice(resources[:12]) if status != 1 else None
    rec = {
        "id": t_id, "ticketNumber": f"T{created.strftime('%Y%m%d')}.{i + 1:04d}",
        "title": R.choice(TITLES[issue]), "description": "Reported by the customer. See notes for details.",
        "companyID": cid, "companyLocationID": cust_locations.get(cid, [None])[0],
        "contactID": R.choice(contacts_by_co.get(cid, [None])), "status": status, "priority": [2, 2, 3, 1, 4][i % 5],
        "queueID": queues[i % len(queues)], "issueType": issue, "subIssueType": R.choice(SUBS[issue]),
        "ticketCategory": 3 if i % 9 == 0 else 2, "ticketType": 5 if i % 9 == 0 else R.choice([1, 2]),
        "source": 6 if i % 9 == 0 else R.choice([1, 2, 4]), "assignedResourceID": assigned,
        "assignedResourceRoleID": R.choice(roles) if assigned else None,
        "dueDateTime": ts(created + dt.timedelta(days=R.randint(1, 10)), 17),
        "configurationItemID": ci, "contractID": contracts.get(cid), "projectID": None,
        "createDate": ts(created, R.randint(7, 18), R.randint(0, 59)),
        "completedDate": ts(created + dt.timedelta(days=R.randint(0, 5)), 16) if status == 5 else None,
        "lastActivityDate": ts(days(-R.randint(0, 10))), "externalID": None,
        "creatorType": 1, "lastActivityPersonType": 1,
        "userDefinedFields": [{"name": "Alert ID", "value": f"ALERT-{9000 + i}" if i % 9 == 0 else None},
                              {"name": "Customer Impact Score", "value": R.randint(1, 10) if i % 4 == 0 else None}]}
    records["Tickets"].append(rec)
    tickets.append((t_id, cid, status, created))
    t_id += 1

note_id = 29690000
for t, cid, status, created in tickets:
    for k in range(R.randint(0, 3) if status != 5 else 2):
        records["TicketNotes"].append({
            "id": note_id, "ticketID": t, "title": ["Initial triage", "Customer update", "Resolution"][k % 3],
            "description": R.choice(["Called the user and reproduced the issue.", "Remote session, applied fix, waiting for confirmation.",
                                     "Issue resolved; closing ticket.", "Escalated to Level II."]),
            "noteType": [1, 3, 14][k % 3], "publish": 1 if k != 1 else 2,
            "createDateTime": ts(created + dt.timedelta(days=k), 10 + k), "creatorResourceID": R.choice(resources[:12]),
            "lastActivityDate": ts(created + dt.timedelta(days=k), 10 + k)})
        note_id += 1

for k, (t, cid, status, created) in enumerate(tickets[:5]):
    records["TicketAttachments"].append({"id": 29691000 + k, "parentID": t, "parentType": 4, "attachDate": ts(created, 12),
                                         "attachedByResourceID": resources[0], "attachmentType": "FILE_ATTACHMENT",
                                         "contentType": "image/png", "fileSize": 2048.0, "fullPath": "screenshot.png",
                                         "publish": 1, "title": "screenshot.png"})

for i in range(40):
    cid = customers[i % len(customers)][0]
    records["CompanyNotes"].append({"id": 29692000 + i, "companyID": cid, "actionType": 1 + i % 4,
                                    "assignedResourceID": resources[i % 6], "name": R.choice(["QBR", "Renewal call", "Site visit", "Security review"]),
                                    "note": "Discussed roadmap and open items.", "startDateTime": ts(days(-i * 3), 10),
                                    "endDateTime": ts(days(-i * 3), 11), "completedDateTime": None,
                                    "createDateTime": ts(days(-i * 3), 9), "lastModifiedDate": ts(days(-i * 3), 11)})

task_ids = []
proj_id, phase_id, task_id = 29684000, 29684500, 29685000
for i in range(6):
    cid = customers[i * 3][0]
    start = days(-R.randint(10, 90))
    records["Projects"].append({
        "id": proj_id, "projectName": ["Server Migration", "Microsoft 365 Rollout", "Firewall Replacement", "Office Move", "Backup Overhaul", "Security Hardening"][i],
        "projectNumber": f"P2026{i:04d}", "companyID": cid, "projectType": 5, "status": [2, 2, 1, 5, 8, 2][i],
        "startDateTime": ts(start), "endDateTime": ts(start + dt.timedelta(days=60), 17),
        "projectLeadResourceID": resources[7], "department": 2, "description": "Customer project",
        "contractID": contracts.get(cid), "completedPercentage": [40, 10, 0, 100, 25, 60][i],
        "createDateTime": ts(start - dt.timedelta(days=5)), "lastActivityDateTime": ts(days(-2)),
        "userDefinedFields": [{"name": "Project Sponsor", "value": "Owner"}]})
    for p in range(2):
        records["Phases"].append({"id": phase_id, "projectID": proj_id, "parentPhaseID": None,
                                  "title": ["Planning", "Execution"][p], "description": None,
                                  "startDate": ts(start + dt.timedelta(days=30 * p)), "dueDate": ts(start + dt.timedelta(days=30 * p + 29)),
                                  "estimatedHours": 20.0, "isScheduled": True, "phaseNumber": f"{p + 1}", "createDate": ts(start)})
        for t in range(3):
            records["Tasks"].append({"id": task_id, "projectID": proj_id, "phaseID": phase_id,
                                     "title": f"{['Gather requirements', 'Design', 'Sign-off', 'Build', 'Cutover', 'Documentation'][p * 3 + t]}",
                                     "description": None, "status": R.choice([1, 5, 8]), "taskType": 1, "priority": t + 1,
                                     "assignedResourceID": resources[7 + t], "assignedResourceRoleID": roles[1],
                                     "startDateTime": ts(start + dt.timedelta(days=30 * p + t * 5)),
                                     "endDateTime": ts(start + dt.timedelta(days=30 * p + t * 5 + 4), 17),
                                     "estimatedHours": float(4 * (t + 1)), "taskNumber": f"T{task_id}",
                                     "createDateTime": ts(start), "lastActivityDateTime": ts(days(-1))})
            task_ids.append(task_id)
            task_id += 1
        phase_id += 1
    proj_id += 1

te = 29686000
for k, (t, cid, status, created) in enumerate(tickets[:60]):
    h = R.choice([0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    records["TimeEntries"].append({"id": te, "resourceID": R.choice(resources[:12]), "roleID": roles[0], "ticketID": t,
                                   "taskID": None, "contractID": contracts.get(cid), "dateWorked": ts(created, 0),
                                   "startDateTime": ts(created, 13), "endDateTime": None, "hoursWorked": h, "hoursToBill": h,
                                   "summaryNotes": "Worked on the issue remotely.", "internalNotes": None,
                                   "billingCodeID": 29682801, "isNonBillable": False, "timeEntryType": 2,
                                   "createDateTime": ts(created, 14), "lastModifiedDateTime": ts(created, 14)})
    te += 1
for k, tid in enumerate(task_ids[:20]):
    records["TimeEntries"].append({"id": te, "resourceID": resources[7], "roleID": roles[2], "ticketID": None, "taskID": tid,
                                   "contractID": None, "dateWorked": ts(days(-k), 0), "startDateTime": None, "endDateTime": None,
                                   "hoursWorked": 2.0, "hoursToBill": 2.0, "summaryNotes": "Project work.", "internalNotes": None,
                                   "billingCodeID": 29682803, "isNonBillable": False, "timeEntryType": 6,
                                   "createDateTime": ts(days(-k), 18), "lastModifiedDateTime": ts(days(-k), 18)})
    te += 1

records["Surveys"] = [{"id": 1, "name": "Ticket Satisfaction", "displayName": "How did we do?", "description": "Sent when a ticket completes"},
                      {"id": 2, "name": "Quarterly NPS", "displayName": "Would you recommend us?", "description": "Quarterly"}]
sr = 1
for t, cid, status, created in tickets:
    if status == 5 and sr <= 30:
        rating = R.choice([5, 5, 5, 4, 4, 3, 2, 1])
        records["SurveyResults"].append({"id": sr, "surveyID": 1, "companyID": cid, "contactID": R.choice(contacts_by_co.get(cid, [None])),
                                         "ticketID": t, "sendDate": ts(created + dt.timedelta(days=2), 8),
                                         "completeDate": ts(created + dt.timedelta(days=3), 12), "surveyRating": float(rating),
                                         "companyRating": float(rating), "contactRating": float(rating), "resourceRating": float(rating)})
        sr += 1

records["DocumentCategories"] = [{"id": 1, "name": "Runbooks", "description": "How-to", "isActive": True},
                                 {"id": 2, "name": "Network Diagrams", "description": None, "isActive": True}]
for i in range(10):
    records["Documents"].append({"id": 100 + i, "title": f"{customers[i][2]} network overview", "documentCategoryID": 1 + i % 2,
                                 "companyID": customers[i][0], "publish": 1, "referenceLink": None, "errorCodes": None,
                                 "keywords": "network", "createdDateTime": ts(days(-100 + i)), "lastModifiedDateTime": ts(days(-i))})
records["DocumentAttachments"].append({"id": 500, "parentID": 100, "attachDate": ts(days(-50)), "attachmentType": "FILE_ATTACHMENT",
                                       "contentType": "application/pdf", "fileSize": 10240.0, "fullPath": "diagram.pdf", "publish": 1, "title": "diagram.pdf"})

# A webhook an earlier integration left behind; Autotask deactivated it after its endpoint
# failed (see the error log below), so it sends nothing.
records["TicketWebhooks"].append({"id": 1, "name": "weft tickets", "webhookUrl": "http://127.0.0.1:9/hooks/tickets",
                                  "deactivationUrl": "http://127.0.0.1:9/hooks/deactivated", "secretKey": "sim-webhook-secret",
                                  "isActive": False, "isReady": True, "isSubscribedToCreateEvents": True,
                                  "isSubscribedToUpdateEvents": True, "isSubscribedToDeleteEvents": False,
                                  "notificationEmailAddress": "noc@brightpath-it.example", "ownerResourceID": resources[0],
                                  "sendThresholdExceededNotification": True, "webhookGUID": "6e0cbd1c-5eed-4a11-8000-000000000001"})
records["TicketWebhookFields"].append({"id": 1, "fieldID": 5, "isDisplayAlwaysField": False, "isSubscribedField": True, "webhookID": 1})
records["TicketWebhookExcludedResources"].append({"id": 1, "resourceID": 29682905, "webhookID": 1})
records["WebhookEventErrorLogs"].append({"id": 1, "ticketWebhookID": 1, "createDateTime": ts(days(-3), 4),
                                         "errorMessage": "The remote server returned an error: (503) Service Unavailable.",
                                         "payload": "{\"Action\":\"Update\",\"Guid\":\"6e0cbd1c-5eed-4a11-8000-000000000001\",\"EntityType\":\"Ticket\",\"Id\":7801}",
                                         "sequenceNumber": 12})

tenant = {"zoneName": "Simulated Zone (weft-sim)", "webUrl": "https://ww.weft-sim.invalid/", "ci": 424242,
          "picklists": picklists, "udfs": udfs, "records": records}
text = json.dumps(tenant, indent=1, sort_keys=False) + "\n"
out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tenant.json")
with open(out, "w") as f:
    f.write(text)
print(f"wrote {out}: " + ", ".join(f"{k}={len(v)}" for k, v in records.items()))
