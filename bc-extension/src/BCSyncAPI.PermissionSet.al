namespace BCSync.CRM;

using Microsoft.CRM.Team;
using Microsoft.Finance.Dimension;
using Microsoft.Foundation.NoSeries;
using Microsoft.Foundation.UOM;
using Microsoft.Projects.Resources.Resource;
using Microsoft.Projects.Resources.Setup;

/// <summary>
/// What the sync's Entra application user needs for this extension's pages: the pages themselves, the
/// two tables they write, and what the tables' own triggers touch on insert, modify and rename
/// (number series, the resource's unit of measure rows, default dimensions). Deleting a resource also
/// makes Business Central check ledger entries, planning lines and time sheets; see README.md.
/// </summary>
permissionset 50100 "BCSYNC API"
{
    Assignable = true;
    Caption = 'BC Dataverse Sync API';

    Permissions =
        page "BCSync Resources API" = X,
        page "BCSync Salespeople API" = X,
        tabledata Resource = RIMD,
        tabledata "Resource Unit of Measure" = RIMD,
        tabledata "Unit of Measure" = R,
        tabledata "Resources Setup" = R,
        tabledata "No. Series" = R,
        tabledata "No. Series Line" = RM,
        tabledata "Default Dimension" = RIMD,
        tabledata "Salesperson/Purchaser" = RIMD;
}
