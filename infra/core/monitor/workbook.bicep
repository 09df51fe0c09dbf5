// Azure Monitor workbook: runs, failures, records synchronized, throttling (queries in workbook.json;
// tests/unit/test_infra.py checks every name they use against shared/telemetry.py).
param location string
param tags object = {}
param applicationInsightsName string
param displayName string = 'BC ⇄ Dataverse sync'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, applicationInsightsName, 'bc-dataverse-sync-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: string(loadJsonContent('workbook.json'))
  }
}

output workbookId string = workbook.id
